-- Driver of tests/e2e/test_neovim.py (not part of the README): loads the README's snippet
-- (wtls.lua) unchanged, then plays an editor session and writes what it saw as JSON.
--   WTLS_SNIPPET     path of wtls.lua        WTLS_OPEN   file to edit
--   WTLS_WANT_CODES  diagnostic codes to wait for (comma-separated)
--   WTLS_SPAWN       name for :WtlsSpawn     WTLS_RESULT where to write the JSON
--   WTLS_MERGE_SNIPPET  docs/protocol.md's :PredictedMerge (predicted-merge.lua), run with
--                       WTLS_MERGE_WITH before the spawn
local TIMEOUT = tonumber(vim.env.WTLS_TIMEOUT_MS or '30000')
local out = { notifications = 0, messages = {} }

-- Record what the snippet tells the user instead of showing it.
vim.notify = function(msg, level)
  table.insert(out.messages, { message = msg, level = level or vim.log.levels.INFO })
end
vim.api.nvim_create_autocmd('User', {
  pattern = 'WtlsWorktrees',
  callback = function()
    out.notifications = out.notifications + 1
  end,
})

dofile(assert(vim.env.WTLS_SNIPPET))

local function wtls_client()
  return vim.lsp.get_clients({ name = 'wtls' })[1]
end

local function diagnostics()
  local found = {}
  for _, d in ipairs(vim.diagnostic.get()) do
    table.insert(found, {
      file = vim.api.nvim_buf_get_name(d.bufnr),
      lnum = d.lnum,
      severity = d.severity,
      code = d.code,
      source = d.source,
      message = d.message,
    })
  end
  return found
end

local function has_codes(codes)
  local seen = {}
  for _, d in ipairs(vim.diagnostic.get()) do
    seen[d.code or ''] = true
  end
  for _, code in ipairs(codes) do
    if not seen[code] then
      return false
    end
  end
  return true
end

local function session()
  vim.cmd.edit(vim.fn.fnameescape(assert(vim.env.WTLS_OPEN)))

  -- The client starts from the snippet's config and the branch notification arrives.
  assert(vim.wait(TIMEOUT, function()
    local state = vim.g.wtls_worktrees
    return state ~= nil and state.this ~= vim.NIL
  end, 50), 'no wtls/worktrees notification naming this worktree')
  local client = assert(wtls_client(), 'no wtls client')
  out.attached = vim.lsp.buf_is_attached(0, client.id)
  out.root_dir = client.root_dir
  out.state = vim.g.wtls_worktrees
  out.branch = _G.wtls_branch()
  local provider = client.server_capabilities.executeCommandProvider
  out.commands = provider and provider.commands or {}

  -- Diagnostics published by the server, as vim.diagnostic sees them.
  local want = vim.split(vim.env.WTLS_WANT_CODES or '', ',', { trimempty = true })
  out.diagnostics_complete = vim.wait(TIMEOUT, function()
    return has_codes(want)
  end, 50)
  out.diagnostics = diagnostics()

  -- docs/protocol.md's :PredictedMerge opens the merged file in a scratch buffer.
  if vim.env.WTLS_MERGE_SNIPPET then
    dofile(vim.env.WTLS_MERGE_SNIPPET)
    local source = vim.api.nvim_get_current_buf()
    vim.cmd('PredictedMerge ' .. assert(vim.env.WTLS_MERGE_WITH))
    out.merge_shown = vim.wait(TIMEOUT, function()
      return vim.api.nvim_get_current_buf() ~= source
    end, 50)
    out.merge_name = vim.api.nvim_buf_get_name(0)
    out.merge_lines = vim.api.nvim_buf_get_lines(0, 0, -1, false)
    out.merge_modifiable = vim.bo.modifiable
    vim.cmd('close')
  end

  -- wtls.spawn through the snippet's :WtlsSpawn (workspace/executeCommand).
  local name = assert(vim.env.WTLS_SPAWN)
  local before = #out.messages
  vim.cmd('WtlsSpawn ' .. name)
  out.spawn_answered = vim.wait(120000, function()
    return #out.messages > before
  end, 50)
  out.spawn_message = out.messages[before + 1]
  out.spawn_announced = vim.wait(TIMEOUT, function()
    for _, wt in ipairs((vim.g.wtls_worktrees or {}).worktrees or {}) do
      if type(wt.branch) == 'string' and wt.branch:find(name, 1, true) then
        return true
      end
    end
    return false
  end, 50)
  out.after_spawn = vim.g.wtls_worktrees
end

-- After startup, as a user opening a file would (filetype detection is on by then).
vim.api.nvim_create_autocmd('VimEnter', {
  once = true,
  nested = true, -- so that opening the file fires FileType (and the LSP start)
  callback = function()
    local ok, err = pcall(session)
    if not ok then
      out.error = tostring(err)
    end
    local file = assert(io.open(assert(vim.env.WTLS_RESULT), 'w'))
    file:write(vim.json.encode(out))
    file:close()
    vim.cmd('qall!')
  end,
})
