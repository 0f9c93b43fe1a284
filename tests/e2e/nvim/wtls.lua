-- wtls, the worktree language server, in Neovim 0.11+ (built-in LSP client).
-- Save as ~/.config/nvim/plugin/wtls.lua (or paste into init.lua). The server command is
-- `wtls serve` from PATH; set WTLS_CMD to override it, e.g. WTLS_CMD='python3 -m wtls serve'.
vim.lsp.config('wtls', {
  cmd = vim.env.WTLS_CMD and vim.split(vim.env.WTLS_CMD, ' ', { trimempty = true })
    or { 'wtls', 'serve' },
  -- Every worktree has a .git (a folder in the main one, a file in linked ones): one root each.
  root_markers = { '.git' },
  handlers = {
    -- The state of every worktree of the repository (docs/protocol.md); `this` is the
    -- worktree of this editor. Kept in vim.g.wtls_worktrees for statuslines and scripts.
    ['wtls/worktrees'] = function(_, state)
      vim.g.wtls_worktrees = state
      vim.api.nvim_exec_autocmds('User', { pattern = 'WtlsWorktrees', modeline = false })
    end,
  },
})
vim.lsp.enable('wtls')

-- The branch of this worktree, for a statusline: `set statusline+=%{v:lua.wtls_branch()}`.
function _G.wtls_branch()
  local state = vim.g.wtls_worktrees
  for _, wt in ipairs(state and state.worktrees or {}) do
    if wt.isThis then
      return wt.branch ~= vim.NIL and wt.branch or 'detached'
    end
  end
  return ''
end

-- :WtlsSpawn NAME  creates a worktree and branch for a fresh AI session (wtls.spawn).
vim.api.nvim_create_user_command('WtlsSpawn', function(opts)
  local client = vim.lsp.get_clients({ name = 'wtls' })[1]
  if not client then
    return vim.notify('wtls is not running for this buffer', vim.log.levels.WARN)
  end
  client:exec_cmd({
    title = 'wtls: spawn ' .. opts.args,
    command = 'wtls.spawn',
    arguments = { { name = opts.args } },
  }, {}, function(err, result)
    if err then
      vim.notify('wtls: ' .. err.message, vim.log.levels.ERROR)
    else
      vim.notify(('wtls: created %s on branch %s'):format(result.path, result.branch))
    end
  end)
end, { nargs = 1, desc = 'wtls: new worktree and branch for a fresh AI session' })
