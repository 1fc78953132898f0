<?php
/*
 * Double of MISP's application (see app/Lib/Cake.php): the cake commands the roles run
 * (/work/shared/reference/misp.md; misp-docker's configure_misp.sh and 50-workers.conf):
 *   start_worker <queue>                  consume the queue's jobs from Redis, forever
 *   Admin runUpdates                      apply the database updates MYSQL.sql lacks
 *   Admin getSetting <name|all>           print the setting(s) as JSON
 *   Admin setSetting [-f] <name> <value>  set a setting, CLI-only ones included
 *   User init                             create the first user (site admin) and print its key
 *   User change_authkey <id> [<key>]      set a user's API key (users.authkey, or a new row of
 *                                         auth_keys with Security.advanced_authkeys)
 *   Server cacheFeed|fetchFeed|pullAll|pushAll|cacheServerAll <uid> ..., Admin updateGalaxies,
 *   updateTaxonomies, updateWarningLists, updateNoticeLists, updateObjectTemplates [<uid>]:
 *                                         the scheduled tasks; each run is a finished row in
 *                                         table jobs (job_type "<Shell> <command>", message
 *                                         "Job done on <host>.")
 */

require dirname(__DIR__) . '/Lib/Misp.php';
require dirname(__DIR__) . '/Lib/Settings.php';

// Database versions and what each adds to INSTALL/MYSQL.sql's schema.
const UPDATES = array(
    2 => "CREATE TABLE system_settings (setting varchar(255) NOT NULL PRIMARY KEY, value blob NOT NULL)",
    3 => "CREATE TABLE jobs (id int NOT NULL AUTO_INCREMENT PRIMARY KEY, worker varchar(32) NOT NULL,
          job_type varchar(32) NOT NULL, job_input text, status tinyint NOT NULL DEFAULT 0,
          retries int NOT NULL DEFAULT 0, message text, progress int NOT NULL DEFAULT 0,
          org_id int NOT NULL DEFAULT 0, process_id varchar(36), date_created datetime NOT NULL,
          date_modified datetime NOT NULL)",
);
const TASKS = array(
    'Server' => array('cacheFeed', 'fetchFeed', 'pullAll', 'pushAll', 'cacheServerAll'),
    'Admin' => array('updateGalaxies', 'updateTaxonomies', 'updateWarningLists', 'updateNoticeLists',
        'updateObjectTemplates'),
);
// MISP's Job statuses.
const STATUS_RUNNING = 2;
const STATUS_COMPLETED = 4;

function fail($message)
{
    fwrite(STDERR, $message . "\n");
    exit(1);
}

function dbVersion()
{
    return (int)Misp::db()->query("SELECT value FROM admin_settings WHERE setting = 'db_version'")->fetchColumn();
}

function runUpdates()
{
    $db = Misp::db();
    foreach (UPDATES as $version => $sql) {
        if ($version > dbVersion()) {
            $db->exec($sql);
            $db->prepare("UPDATE admin_settings SET value = ? WHERE setting = 'db_version'")->execute(array($version));
            echo "Database updated to version $version\n";
        }
    }
    echo "All updates completed (database version " . dbVersion() . ").\n";
}

function userInit()
{
    $db = Misp::db();
    if ((int)$db->query('SELECT COUNT(*) FROM users')->fetchColumn() > 0) {
        // MISP's UserShell prints this with err() and still exits 0.
        fwrite(STDERR, "Script aborted: MISP instance already initialised.\n");
        return;
    }
    $key = bin2hex(random_bytes(20));
    $db->prepare("INSERT INTO users (email, authkey, role_id, org_id, change_pw) VALUES (?, ?, 1, 1, 1)")
        ->execute(array('admin@admin.test', $key));
    echo $key . "\n";
}

// As MISP's UserShell::change_authkey: the key of users.authkey, or with
// Security.advanced_authkeys a new row of auth_keys (bcrypt) after the user's keys expire.
function changeAuthkey($id, $key)
{
    $db = Misp::db();
    $column = ctype_digit((string)$id) ? 'id' : 'email';
    $stmt = $db->prepare("SELECT id FROM users WHERE $column = ?");
    $stmt->execute(array($id));
    $userId = $stmt->fetchColumn();
    if (!$userId) {
        fail("User `$id` not found.");
    }
    if ($key !== null && (strlen($key) != 40 || !ctype_alnum($key))) {
        fail('The new auth key needs to be 40 characters long and only alphanumeric.');
    }
    $key = $key ?? bin2hex(random_bytes(20));
    if (!Configure::read('Security.advanced_authkeys')) {
        $db->prepare('UPDATE users SET authkey = ? WHERE id = ?')->execute(array($key, $userId));
        echo "Authentication key changed to: $key\n";
        return;
    }
    $db->prepare('UPDATE auth_keys SET expiration = ? WHERE user_id = ? AND (expiration = 0 OR expiration > ?)')
        ->execute(array(time(), $userId, time()));
    $db->prepare('INSERT INTO auth_keys (authkey, authkey_start, authkey_end, created, user_id) VALUES (?, ?, ?, ?, ?)')
        ->execute(array(password_hash($key, PASSWORD_BCRYPT), substr($key, 0, 4), substr($key, -4), time(), $userId));
    echo "Old authentication keys disabled and new key created: $key\n";
}

function getSetting($name)
{
    if ($name === 'all') {
        $all = array();
        foreach (Settings::finalSettings() as $entry) {
            $all[$entry->setting] = $entry->value;
        }
        echo json_encode($all, JSON_PRETTY_PRINT) . "\n";
        return;
    }
    $definition = Settings::definition($name);
    if ($definition === null) {
        fail("No valid setting found for $name");
    }
    $answer = clone $definition;
    $answer->value = empty($definition->redacted) ? Settings::value($name) : Settings::REDACTED;
    echo json_encode($answer, JSON_PRETTY_PRINT) . "\n";
}

function setSetting($args)
{
    $force = $args && $args[0] === '-f';
    if ($force) {
        array_shift($args);
    }
    if (count($args) !== 2) {
        fail('Usage: cake Admin setSetting [-f] <name> <value>');
    }
    list($name, $value) = $args;
    $definition = Settings::definition($name);
    if ($definition === null) {
        fail('Setting change rejected.');
    }
    // The shell reads "true" and "false" as booleans, the rest as strings cast like the API.
    if ($definition->type === 'boolean' && in_array($value, array('true', 'false'), true)) {
        $value = $value === 'true';
    }
    $stored = Settings::cast($definition, $value);
    $verdict = Settings::test($definition, $stored);
    if ($verdict !== true && !$force) {
        fail("Setting change rejected. $verdict");
    }
    $result = Settings::store($name, $stored);
    if ($result !== true) {
        fail("Setting change rejected. $result");
    }
    echo "Setting \"$name\" changed to " . json_encode($stored) . "\n";
}

// A scheduled task: checks the user as MISP does, then records its run.
function task($shell, $command, $args)
{
    if ($command !== 'updateGalaxies' && $command !== 'updateTaxonomies' && $command !== 'updateWarningLists'
        && $command !== 'updateNoticeLists') {
        $stmt = Misp::db()->prepare('SELECT COUNT(*) FROM users WHERE id = ?');
        $stmt->execute(array((int)($args[0] ?? 0)));
        if (!$stmt->fetchColumn()) {
            fail('User ID do not match an existing user.');
        }
    }
    // The host (a CronJob pod's name, up to 63 characters) goes into the message: process_id is
    // MISP's short worker process name (varchar(36)), which a shell run does not have.
    Misp::db()->prepare('INSERT INTO jobs (worker, job_type, job_input, status, message, progress, '
        . 'date_created, date_modified) VALUES (?, ?, ?, ?, ?, 100, NOW(), NOW())')
        ->execute(array('cron', "$shell $command", json_encode($args), STATUS_COMPLETED,
            'Job done on ' . gethostname() . '.'));
    echo "$shell $command done.\n";
}

// BackgroundJobsTool's worker: blocks on the queue's list, runs each job, marks it done in
// table jobs and in Redis. supervisord names the process (SUPERVISOR_PROCESS_NAME).
function startWorker($queue)
{
    if (!in_array($queue, Misp::QUEUES, true)) {
        fail("Invalid queue '$queue'.");
    }
    $name = getenv('SUPERVISOR_PROCESS_NAME') ?: $queue . '_' . getmypid();
    $redis = Misp::redis('SimpleBackgroundJobs');
    $redis->setOption(Redis::OPT_READ_TIMEOUT, -1);
    echo "Worker $name started on queue $queue\n";
    $update = Misp::db()->prepare('UPDATE jobs SET status = ?, process_id = ?, progress = ?, message = ?, '
        . 'date_modified = NOW() WHERE id = ?');
    while (true) {
        $item = $redis->blPop(array(Misp::queueKey($queue)), 10);
        if (!$item) {
            continue;
        }
        $job = json_decode($item[1], true);
        $update->execute(array(STATUS_RUNNING, $name, 0, 'Running.', $job['id']));
        $update->execute(array(STATUS_COMPLETED, $name, 100, "Job done by $name.", $job['id']));
        $redis->set((Configure::read('SimpleBackgroundJobs.redis_namespace') ?: 'background_jobs')
            . ':job:' . $job['id'], json_encode(array('status' => STATUS_COMPLETED, 'worker' => $name)));
        echo "Job {$job['id']} ({$job['job_type']}) done\n";
    }
}

$args = array_slice($argv, 1);
Misp::boot();
$shell = array_shift($args);
$command = array_shift($args);
if ($shell === 'start_worker') {
    Misp::loadDbSettings();
    startWorker($command);
}
if ($shell === 'Admin' && $command === 'runUpdates') {
    runUpdates();
    exit(0);
}
Misp::loadDbSettings();
if ($shell === 'Admin' && $command === 'getSetting') {
    getSetting($args[0] ?? 'all');
} elseif ($shell === 'Admin' && $command === 'setSetting') {
    setSetting($args);
} elseif (($shell === 'User' || $shell === 'user') && $command === 'init') {
    userInit();
} elseif ($shell === 'User' && $command === 'change_authkey') {
    changeAuthkey($args[0] ?? '', $args[1] ?? null);
} elseif (isset(TASKS[$shell]) && in_array($command, TASKS[$shell], true)) {
    task($shell, $command, $args);
} else {
    fail("Unknown command: cake $shell $command");
}
