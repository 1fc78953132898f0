<?php
/*
 * Double of MISP's application (tests/doubles/misp_php, installed as /var/www/MISP in the rig's
 * MISP stand-in image tests/rig/images/misp). It stands for MISP 2.5 on CakePHP 2 and follows
 * /work/shared/reference/misp.md; docs/misp-image.md says what the roles rely on.
 *
 * The two CakePHP 2 classes MISP's configuration files call: Configure (dot paths, load()
 * includes app/Config/<name>.php and merges its $config array) and CakePlugin (load, loadAll).
 */

define('APP', dirname(__DIR__) . '/');
define('CONFIG', APP . 'Config/');

class Configure
{
    private static $values = array();

    public static function write($path, $value)
    {
        $node = &self::$values;
        foreach (explode('.', $path) as $key) {
            if (!isset($node[$key]) || !is_array($node[$key])) {
                $node[$key] = array();
            }
            $node = &$node[$key];
        }
        $node = $value;
    }

    public static function read($path = null)
    {
        if ($path === null) {
            return self::$values;
        }
        $node = self::$values;
        foreach (explode('.', $path) as $key) {
            if (!is_array($node) || !array_key_exists($key, $node)) {
                return null;
            }
            $node = $node[$key];
        }
        return $node;
    }

    public static function check($path)
    {
        return self::read($path) !== null;
    }

    // As CakePHP's PhpReader: the file defines $config; its keys merge into what is loaded.
    public static function load($name)
    {
        $file = CONFIG . $name . '.php';
        if (!is_file($file)) {
            throw new RuntimeException("Could not load configuration file: $file");
        }
        include $file;
        if (!isset($config) || !is_array($config)) {
            throw new RuntimeException("No variable \$config found in $file");
        }
        self::$values = array_replace_recursive(self::$values, $config);
        return true;
    }
}

class CakePlugin
{
    private static $loaded = array();

    // MISP's plugins live in app/Plugin; the double has none, so loading only records the name.
    public static function load($name)
    {
        self::$loaded[$name] = true;
    }

    public static function loadAll()
    {
        foreach (glob(APP . 'Plugin/*', GLOB_ONLYDIR) ?: array() as $dir) {
            self::load(basename($dir));
        }
    }

    public static function loaded($name = null)
    {
        return $name === null ? array_keys(self::$loaded) : isset(self::$loaded[$name]);
    }
}
