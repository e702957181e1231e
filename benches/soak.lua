-- wrk script of the soak: cycles through the requests listed in the file named by the
-- first script argument, one a line: a path (GET), or METHOD<TAB>PATH<TAB>BODY (JSON).
-- A second argument is a bearer token sent with every request.
local requests = {}
local counter = 0

function init(args)
  local headers = {}
  if args[2] and args[2] ~= "" then
    headers["Authorization"] = "Bearer " .. args[2]
  end
  for line in io.lines(args[1]) do
    local method, path, body = line:match("^(%u+)\t([^\t]+)\t?(.*)$")
    if method == nil then
      method, path, body = "GET", line, ""
    end
    local h = {}
    for k, v in pairs(headers) do h[k] = v end
    if body ~= "" then h["Content-Type"] = "application/json" else body = nil end
    requests[#requests + 1] = wrk.format(method, path, h, body)
  end
  -- Each wrk thread starts at a different point of the list.
  counter = math.random(#requests)
end

function request()
  counter = counter % #requests + 1
  return requests[counter]
end
