-- Calls a Fluent Bit Lua filter the way Fluent Bit does: cb(tag, timestamp, record) returning
-- (code, timestamp, record). Usage: lua5.4 harness.lua <filter.lua> <function> < lines
-- Each input line becomes the "log" field of a record shaped like the tail input and kubernetes
-- filter make it; a line "FIELDS" instead runs a record with parsed, nested fields. For every
-- record it prints "code <n> <timestamp>" then one "<path>\t<value>" line per leaf, then "end".
local script, fn = arg[1], arg[2]
dofile(script)
local filter = _G[fn]

local function leaves(value, path, out)
  local keys = {}
  for k in pairs(value) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local item = value[k] ~= nil and value[k] or value[tonumber(k)]
    local p = path == "" and k or (path .. "." .. k)
    if type(item) == "table" then leaves(item, p, out) else out[#out + 1] = p .. "\t" .. tostring(item) end
  end
  return out
end

for line in io.lines() do
  local record
  if line == "FIELDS" then
    record = {
      log = "POST /events/add 200",
      password = "hunter2",
      request = { Authorization = "Xa9kLmN0pQrStUvWxYz1234567890AbCdEfGhIjK", path = "/events/add", body = "token=abc123&name=ok" },
      headers = { { name = "Cookie", value = "MISP-abc=def" } },
    }
  else
    record = {
      log = line,
      stream = "stdout",
      kubernetes = { pod_name = "misp-frontend-7d9c-x2x", namespace_name = "misp",
                     labels = { ["app.kubernetes.io/component"] = "frontend" } },
    }
  end
  local code, ts, new = filter("misp.var.log.containers.misp-frontend", 1700000000.25, record)
  print("code " .. code .. " " .. string.format("%.2f", ts))
  for _, l in ipairs(leaves(new, "", {})) do print(l) end
  print("end")
end
