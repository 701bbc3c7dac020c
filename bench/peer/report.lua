-- wrk script of bench/side_by_side.py: one JSON line of figures (latencies in microseconds), like load/report.lua.
-- With SBS_VARY_END=<n> set, every request asks for the same latest candles with a distinct `end` far in the
-- future (a distinct cache key, so our server misses its cache on every request; the peer never caches).
local vary = os.getenv("SBS_VARY_END")
local counter = 0
local next_id = 0

setup = function(thread)
  thread:set("thread_id", next_id)
  next_id = next_id + 1
end

if vary then
  request = function()
    counter = counter + 1
    local path = string.format(
      "%s&end=2090-01-%02dT%02d:%02d:%02d.%06d%%2B00:00", wrk.path, tonumber(vary) % 28 + 1, (thread_id or 0) % 24,
      math.floor(counter / 60000000) % 60, math.floor(counter / 1000000) % 60, counter % 1000000)
    return wrk.format(nil, path)
  end
end

done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "max_us": %d, "errors": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max, errors))
end
