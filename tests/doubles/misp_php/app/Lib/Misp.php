<?php
/*
 * Double of MISP's application (see app/Lib/Cake.php): start-up as MISP does it, and its
 * connections. core.php and bootstrap.php (which loads config.php) come first; database.php
 * defines DATABASE_CONFIG, email.php EmailConfig, both read as CakePHP's ConnectionManager and
 * CakeEmail do; secrets reach them through getenv(). With MISP.system_setting_db the settings
 * stored in table system_settings override config.php, as MISP's SystemSetting model does.
 */

require_once __DIR__ . '/Cake.php';

class Misp
{
    // The queues `cake start_worker` serves (BackgroundJobsTool::VALID_QUEUES without scheduler).
    const QUEUES = array('default', 'email', 'cache', 'prio', 'update');

    private static $db;
    private static $redis = array();

    public static function boot()
    {
        foreach (array('core', 'bootstrap') as $name) {
            if (is_file(CONFIG . $name . '.php')) {
                require CONFIG . $name . '.php';
            }
        }
        if (!class_exists('DATABASE_CONFIG')) {
            require CONFIG . 'database.php';
        }
        if (!class_exists('EmailConfig') && is_file(CONFIG . 'email.php')) {
            require CONFIG . 'email.php';
        }
    }

    // Settings of the database over config.php; the database must answer.
    public static function loadDbSettings()
    {
        if (!Configure::read('MISP.system_setting_db')) {
            return;
        }
        foreach (self::db()->query('SELECT setting, value FROM system_settings') as $row) {
            Configure::write($row['setting'], json_decode($row['value'], true));
        }
    }

    // PDO from DATABASE_CONFIG::$default, as CakePHP's Mysql datasource builds it.
    public static function db()
    {
        if (self::$db === null) {
            $config = new DATABASE_CONFIG();
            $c = $config->default;
            $dsn = sprintf('mysql:host=%s;port=%d;dbname=%s;charset=%s', $c['host'], $c['port'] ?? 3306,
                $c['database'], $c['encoding'] ?? 'utf8');
            $options = array(PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION, PDO::ATTR_TIMEOUT => 3,
                PDO::ATTR_DEFAULT_FETCH_MODE => PDO::FETCH_ASSOC);
            if (!empty($c['ssl_ca'])) {
                $options[PDO::MYSQL_ATTR_SSL_CA] = $c['ssl_ca'];
            }
            self::$db = new PDO($dsn, $c['login'], $c['password'], $options);
        }
        return self::$db;
    }

    // phpredis connected as MISP's RedisTool (prefix MISP) or BackgroundJobsTool
    // (prefix SimpleBackgroundJobs) does, from the settings of that prefix.
    public static function redis($prefix = 'MISP')
    {
        if (!isset(self::$redis[$prefix])) {
            $redis = new Redis();
            $port = (int)(Configure::read("$prefix.redis_port") ?: 6379);
            if (!$redis->connect(Configure::read("$prefix.redis_host") ?: '127.0.0.1', $port, 3.0)) {
                throw new RedisException("cannot connect to Redis");
            }
            $password = Configure::read("$prefix.redis_password");
            if ($password !== null && $password !== '' && $password !== false) {
                $redis->auth($password);
            }
            $redis->select((int)Configure::read("$prefix.redis_database"));
            self::$redis[$prefix] = $redis;
        }
        return self::$redis[$prefix];
    }

    public static function queueKey($queue)
    {
        return (Configure::read('SimpleBackgroundJobs.redis_namespace') ?: 'background_jobs') . ':queue:' . $queue;
    }

    // The user whose API key this is, or null. As MISP's AppController::_checkAuthUser: with
    // Security.advanced_authkeys only table auth_keys counts (AuthKey::getAuthUserByAuthKey),
    // otherwise only users.authkey (User::getAuthUserByAuthkey).
    public static function userByAuthkey($key)
    {
        if ($key === null || $key === '') {
            return null;
        }
        if (!Configure::read('Security.advanced_authkeys')) {
            $stmt = self::db()->prepare('SELECT id, email, role_id FROM users WHERE authkey = ?');
            $stmt->execute(array($key));
            return $stmt->fetch() ?: null;
        }
        $stmt = self::db()->prepare('SELECT k.authkey, u.id, u.email, u.role_id FROM auth_keys k '
            . 'JOIN users u ON u.id = k.user_id WHERE k.authkey_start = ? AND k.authkey_end = ? '
            . 'AND (k.expiration = 0 OR k.expiration > ?)');
        $stmt->execute(array(substr($key, 0, 4), substr($key, -4), time()));
        foreach ($stmt->fetchAll() as $row) {
            if (password_verify($key, $row['authkey'])) {
                unset($row['authkey']);
                return $row;
            }
        }
        return null;
    }
}
