<?php
/*
 * Double of MISP's application (see app/Lib/Cake.php): the front controller nginx hands every
 * request to. It answers what the roles and their tests use, as MISP 2.5 does
 * (/work/shared/reference/misp.md):
 *   GET  /users/heartbeat                   200 naming the pod and the image variant, or 503 when the
 *                                           database or Redis is unreachable
 *   GET  /servers/getSetting/<name>         definition and value; 404 unknown, 403 redacted
 *   GET  /servers/serverSettings            finalSettings, redacted values *****
 *   POST /servers/serverSettingsEdit/<name> {"value": ..., "force": ...}; 403 with errors, 405 CLI-only
 *   GET  /servers/getWorkers                each queue's workers as supervisord lists them, "alive"
 *                                           judged from /proc on this pod (MISP issue 8616), jobCount
 *   POST /users/login                       starts a PHP session (in Redis) for the key's user
 *   GET  /users/view/me                     the session's user, from any replica
 *   POST /jobs/enqueue/<queue>              (the double's own) a job for `cake start_worker <queue>`
 *   GET  /jobs/view/<id>                    the job's row
 * Every path but the heartbeat needs a site admin's API key in the Authorization header, except
 * /users/view/me, which takes the session cookie. Bodies are JSON; a trailing .json is ignored.
 */

require dirname(__DIR__) . '/Lib/Misp.php';
require dirname(__DIR__) . '/Lib/Settings.php';
require dirname(__DIR__) . '/Lib/Supervisor.php';

// The routes behind the API key (see route()).
const ROUTES = array('GET servers/getSetting', 'GET servers/serverSettings', 'POST servers/serverSettingsEdit',
    'GET servers/getWorkers', 'POST users/login', 'POST jobs/enqueue', 'GET jobs/view');
const AUTH_FAILED = 'Authentication failed. Please make sure you pass the API key of an API enabled '
    . 'user along in the Authorization header.';

class Answer extends Exception
{
    public $status;
    public $body;

    public function __construct($status, $body)
    {
        parent::__construct((string)$status);
        $this->status = $status;
        $this->body = $body;
    }
}

// Cake exceptions rendered for an API client.
function error($status, $message, $path)
{
    return new Answer($status, array('name' => $message, 'message' => $message, 'url' => $path));
}

function saveFail($action, $reason)
{
    $name = "Could not $action Server";
    return new Answer(403, array('saved' => false, 'name' => $name, 'message' => $name,
        'url' => "/servers/$action", 'errors' => $reason));
}

function saved($action, $message)
{
    return array('saved' => true, 'success' => true, 'name' => $message, 'message' => $message,
        'url' => "/servers/$action");
}

function heartbeat($path)
{
    try {
        Misp::db()->query('SELECT 1');
    } catch (PDOException $e) {
        throw error(503, 'Database unreachable: ' . $e->getMessage(), $path);
    }
    try {
        Misp::redis()->ping();
    } catch (RedisException $e) {
        throw error(503, 'Redis unreachable: ' . $e->getMessage(), $path);
    }
    // The body is the double's: which pod and which image (variant) answered.
    return array('message' => 'OK', 'host' => gethostname(), 'image' => getenv('MISP_STAND_IN_VARIANT'));
}

function getSetting($path, $name)
{
    $definition = Settings::definition($name);
    if ($definition === null) {
        throw error(404, "Setting $name is invalid.", $path);
    }
    if (!empty($definition->redacted)) {
        throw error(403, 'This setting is redacted.', $path);
    }
    $answer = clone $definition;
    $answer->value = Settings::value($name);
    return $answer;
}

function serverSettings()
{
    $final = Settings::finalSettings();
    $tabs = array();
    $errors = 0;
    foreach ($final as $entry) {
        $tabs[$entry->tab] = array('count' => 0, 'errors' => 0, 'severity' => 5);
        $errors += $entry->error ? 1 : 0;
    }
    ksort($tabs);
    return array('finalSettings' => $final, 'diagnostic_errors' => $errors, 'tabs' => $tabs,
        'writeableErrors' => new stdClass(), 'readableErrors' => new stdClass(), 'workerIssueCount' => 0);
}

function serverSettingsEdit($path, $name, $body)
{
    $definition = Settings::definition($name);
    if ($definition === null) {
        throw error(404, "Setting $name is invalid.", $path);
    }
    if (!empty($definition->cli_only)) {
        throw error(405, 'This setting can only be edited via the CLI.', $path);
    }
    $data = is_array($body) ? ($body['Server'] ?? $body) : array();
    $value = is_array($data) ? ($data['value'] ?? null) : null;
    if ($value === null || is_array($value)) {
        throw saveFail('serverSettingsEdit', Settings::INVALID_INPUT);
    }
    if (trim((string)$value) === Settings::REDACTED) {
        throw saveFail('serverSettingsEdit', 'No change.');
    }
    $stored = Settings::cast($definition, $value);
    $verdict = Settings::test($definition, $stored);
    if ($verdict !== true && empty($data['force'])) {
        throw saveFail('serverSettingsEdit', $verdict);
    }
    $result = Settings::store($name, $stored);
    if ($result !== true) {
        throw saveFail('serverSettingsEdit', $result);
    }
    return saved('serverSettingsEdit', 'Field updated');
}

// Server::workerDiagnostics for SimpleBackgroundJobs: supervisord's processes of group
// misp-workers per queue, a worker alive when its pid is in this pod's /proc.
function getWorkers()
{
    if (!Configure::read('MISP.background_jobs')) {
        return array('Background jobs not enabled');
    }
    try {
        $processes = Supervisor::processes();
        $reached = true;
    } catch (RuntimeException $e) {
        error_log('MISP stand-in: ' . $e->getMessage());
        $processes = array();
        $reached = false;
    }
    $answer = array();
    foreach (Misp::QUEUES as $queue) {
        $workers = array();
        foreach ($processes as $process) {
            if ($process['group'] === 'misp-workers' && preg_match("/^{$queue}_\\d+\$/", $process['name'])
                && $process['pid'] > 0) {
                $alive = file_exists('/proc/' . $process['pid']);
                $workers[] = array('pid' => $process['pid'], 'user' => 'www-data', 'alive' => $alive,
                    'correct_user' => true, 'ok' => $alive);
            }
        }
        $ok = (bool)array_filter(array_column($workers, 'ok'));
        $answer[$queue] = array('ok' => $ok, 'workers' => $workers,
            'jobCount' => Misp::redis('SimpleBackgroundJobs')->lLen(Misp::queueKey($queue)));
    }
    return $answer + array('proc_accessible' => is_readable('/proc/self/status'), 'controls' => 1,
        'supervisord_status' => $reached);
}

// The session cookie is MISP's (MISP-<uuid>); the handler is the php-fpm pool's (Redis).
function startSession()
{
    session_name('MISP-' . Configure::read('MISP.uuid'));
    session_start();
}

function login($user)
{
    startSession();
    session_regenerate_id(true);
    $_SESSION['Auth'] = array('User' => array('id' => (int)$user['id'], 'email' => $user['email']));
    return array('User' => $_SESSION['Auth']['User'], 'host' => gethostname());
}

function viewMe($path)
{
    startSession();
    if (empty($_SESSION['Auth']['User'])) {
        throw error(403, AUTH_FAILED, $path);
    }
    return array('User' => $_SESSION['Auth']['User'], 'host' => gethostname());
}

// A row in MISP's jobs table, then the job on the queue's Redis list (BackgroundJobsTool).
function enqueue($path, $queue, $body, $user)
{
    if (!in_array($queue, Misp::QUEUES, true)) {
        throw error(405, 'Invalid worker.', $path);
    }
    $type = is_array($body) && isset($body['job_type']) ? (string)$body['job_type'] : 'stand_in';
    $db = Misp::db();
    $db->prepare('INSERT INTO jobs (worker, job_type, job_input, status, org_id, date_created, date_modified) '
        . 'VALUES (?, ?, ?, 1, ?, NOW(), NOW())')->execute(array($queue, $type, json_encode($body), 0));
    $id = (int)$db->lastInsertId();
    Misp::redis('SimpleBackgroundJobs')->rPush(Misp::queueKey($queue),
        json_encode(array('id' => $id, 'job_type' => $type, 'user_id' => (int)$user['id'])));
    return array('id' => $id, 'queue' => $queue);
}

function viewJob($path, $id)
{
    $stmt = Misp::db()->prepare('SELECT * FROM jobs WHERE id = ?');
    $stmt->execute(array((int)$id));
    $job = $stmt->fetch();
    if (!$job) {
        throw error(404, 'Invalid job.', $path);
    }
    return array('Job' => $job);
}

function route($method, $path, $body)
{
    $parts = array_map('rawurldecode', explode('/', trim(preg_replace('/\.json$/', '', $path), '/')));
    $route = $method . ' ' . $parts[0] . '/' . ($parts[1] ?? '');
    $arg = $parts[2] ?? '';
    if ($route === 'GET users/heartbeat') {
        return heartbeat($path);
    }
    Misp::loadDbSettings();
    if ($route === 'GET users/view' && $arg === 'me') {
        return viewMe($path);
    }
    $user = Misp::userByAuthkey($_SERVER['HTTP_AUTHORIZATION'] ?? null);
    if ($user === null || (int)$user['role_id'] !== 1) {
        throw error(403, AUTH_FAILED, $path);
    }
    switch ($route) {
        case 'GET servers/getSetting':
            return getSetting($path, $arg);
        case 'GET servers/serverSettings':
            return serverSettings();
        case 'POST servers/serverSettingsEdit':
            return serverSettingsEdit($path, $arg, $body);
        case 'GET servers/getWorkers':
            return getWorkers();
        case 'POST users/login':
            return login($user);
        case 'POST jobs/enqueue':
            return enqueue($path, $arg, $body, $user);
        case 'GET jobs/view':
            return viewJob($path, $arg);
    }
    // A known action asked with the other method.
    $other = ($method === 'GET' ? 'POST ' : 'GET ') . substr($route, strlen($method) + 1);
    if (in_array($other, ROUTES, true)) {
        throw error(405, 'Method Not Allowed', $path);
    }
    throw error(404, 'Not Found', $path);
}

$path = parse_url($_SERVER['REQUEST_URI'] ?? '/', PHP_URL_PATH);
try {
    Misp::boot();
    $raw = file_get_contents('php://input');
    $body = $raw === '' ? null : json_decode($raw, true);
    $status = 200;
    $answer = route($_SERVER['REQUEST_METHOD'] ?? 'GET', $path, $body);
} catch (Answer $e) {
    $status = $e->status;
    $answer = $e->body;
} catch (Throwable $e) {
    // MISP's internal error page, for an API client; the cause goes to php-fpm's log.
    error_log('MISP stand-in: ' . $e);
    $status = 500;
    $answer = array('name' => 'An Internal Error Has Occurred.', 'message' => 'An Internal Error Has Occurred.',
        'url' => $path);
}
http_response_code($status);
header('Content-Type: application/json');
echo json_encode($answer);
