-- Fluent Bit Lua filter: removes credentials from MISP's log records before they leave the
-- cluster. Fluent Bit calls redact(tag, timestamp, record) for each record and expects
-- (code, timestamp, record): 0 keeps the record as it was, 2 replaces the record and keeps the
-- timestamp. Every string in the record is cleaned, nested tables included, and a field whose
-- name is itself a secret (a parsed JSON body's "password") loses its whole value.

local MASK = "[REDACTED]"

-- Lua patterns have no case-insensitive flag: "pass" -> "[Pp][Aa][Ss][Ss]".
local function nocase(word)
  return (word:gsub("%a", function(c) return "[" .. c:upper() .. c:lower() .. "]" end))
end

-- Names whose value is a secret wherever they appear: query strings and form bodies
-- (password=...), JSON ("password": "..."), PHP arrays ('password' => '...', [password] => ...).
local SECRET_NAMES = {
  "password", "passwd", "passphrase", "secret", "api_key", "apikey", "authkey", "auth_key",
  "access_token", "refresh_token", "id_token", "client_secret", "token", "cookie",
}
local SECRET_FIELDS = {}
for _, name in ipairs(SECRET_NAMES) do SECRET_FIELDS[name] = true end
SECRET_FIELDS["authorization"] = true

local NAME_PATTERNS = {}
for i, name in ipairs(SECRET_NAMES) do
  -- The name may be quoted or bracketed and carry a prefix (new_password, misp_api_key).
  NAME_PATTERNS[i] = nocase(name) .. "[\"'%]]*%s*=?[:=>]%s*"
end

local AUTH_HEADER = nocase("authorization") .. "[\"'%]]*%s*[:=]%s*[\"']?"
-- Also matches Set-Cookie.
local COOKIE_HEADER = nocase("cookie") .. "%s*:%s*"
local AUTH_SCHEMES = { basic = true, bearer = true, digest = true, negotiate = true, token = true }
local BEARER = nocase("bearer") .. "%s+"
local TOKEN_CHARS = "[%w%-%._~%+/]+=*"
-- MISP's session cookie is MISP-<uuid> (older releases: CAKEPHP), PHP's own PHPSESSID.
local SESSION_COOKIES = { "MISP%-[%w%-]+", "CAKEPHP", "PHPSESSID" }
local API_KEY = "%f[%w]" .. string.rep("%w", 40) .. "%f[%W]"

local function clean(s)
  -- Authorization: <key> (MISP) or <scheme> <credentials>: the credentials go, the scheme stays.
  s = s:gsub("(" .. AUTH_HEADER .. ")([^\"',;\r\n]+)", function(prefix, value)
    local scheme, rest = value:match("^(%a+%s+)%S+(.*)$")
    if scheme and AUTH_SCHEMES[scheme:match("%a+"):lower()] then
      return prefix .. scheme .. MASK .. rest
    end
    local credential, tail = value:match("^(%S+)(.*)$")
    if credential == MASK then return nil end
    return prefix .. MASK .. tail
  end)
  s = s:gsub("(" .. BEARER .. ")" .. TOKEN_CHARS, "%1" .. MASK)
  -- Cookie headers: every cookie is a session or CSRF token of some kind.
  s = s:gsub("(" .. COOKIE_HEADER .. ")[^\"\r\n]+", "%1" .. MASK)
  for _, cookie in ipairs(SESSION_COOKIES) do
    s = s:gsub("(" .. cookie .. "=)[^;%s\"',&]+", "%1" .. MASK)
  end
  for _, pattern in ipairs(NAME_PATTERNS) do
    s = s:gsub("(" .. pattern .. ")\"[^\"]*\"", "%1\"" .. MASK .. "\"")
    s = s:gsub("(" .. pattern .. ")'[^']*'", "%1'" .. MASK .. "'")
    -- Unquoted, up to a separator. The first character is never "[" (a value already masked),
    -- nor "=" or ">" (the rest of a "=>" the name pattern stopped inside of).
    s = s:gsub("(" .. pattern .. ")[^%s&,;\"'}%)%]%[=>][^%s&,;\"'}%)%]]*", "%1" .. MASK)
  end
  -- A bare 40-character MISP API key (in a URL, a CLI line). Lower-case hex strings of that
  -- length are SHA-1 values, which MISP logs as indicators; a random key is practically never one.
  s = s:gsub(API_KEY, function(word)
    if word:match("^[0-9a-f]+$") then return nil end
    return MASK
  end)
  return s
end

local function walk(value)
  local changed = false
  for key, item in pairs(value) do
    local new = item
    if type(key) == "string" and SECRET_FIELDS[key:lower()] and type(item) ~= "table" then
      new = MASK
    elseif type(item) == "string" then
      new = clean(item)
    elseif type(item) == "table" then
      changed = walk(item) or changed
    end
    if new ~= item then
      value[key] = new
      changed = true
    end
  end
  return changed
end

function redact(tag, timestamp, record)
  if walk(record) then
    return 2, timestamp, record
  end
  return 0, timestamp, record
end
