-- :PredictedMerge [worktree-or-base]: the current file as the merge would leave it.
vim.api.nvim_create_user_command("PredictedMerge", function(opts)
  local client = vim.lsp.get_clients({ name = "wtls", bufnr = 0 })[1]
  local params = { uri = vim.uri_from_bufnr(0), with = opts.args ~= "" and opts.args or "base" }
  client:request("wtls/predictedMerge", params, function(err, merged)
    if err then return vim.notify(err.message, vim.log.levels.WARN) end
    vim.cmd("vnew")
    vim.bo.buftype, vim.bo.bufhidden = "nofile", "wipe"
    vim.api.nvim_buf_set_lines(0, 0, -1, false, vim.split(merged.content, "\n", { plain = true }))
    vim.bo.modifiable = false
    vim.api.nvim_buf_set_name(0, "merge with " .. merged.theirs .. ": " .. (merged.path or "(deleted)"))
  end)
end, { nargs = "?" })
