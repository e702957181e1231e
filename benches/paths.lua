-- wrk script: cycles through the request paths listed in the file named by the first
-- script argument; a second argument is a prefix put before every path.
local paths = {}
local counter = 0

function init(args)
  local prefix = args[2] or ""
  for line in io.lines(args[1]) do
    paths[#paths + 1] = prefix .. line
  end
  -- Each wrk thread starts at a different point of the list.
  counter = math.random(#paths)
end

function request()
  counter = counter % #paths + 1
  return wrk.format("GET", paths[counter])
end

-- With WRK_LATENCY_OUT set, the latency histogram is appended to that file, one
-- "microseconds count" line per distinct value, so that runs can be merged exactly.
function done(summary, latency, requests)
  local out = os.getenv("WRK_LATENCY_OUT")
  if not out then
    return
  end
  local file = assert(io.open(out, "a"))
  for i = 1, #latency do
    local value, count = latency(i)
    file:write(string.format("%d %d\n", value, count))
  end
  file:close()
end
