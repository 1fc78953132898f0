<?php
/*
 * Double of MISP's application (see app/Lib/Cake.php): server settings as MISP's Server model
 * and ServersController answer them (/work/shared/reference/misp.md "Server settings").
 * settings.json holds the definitions (the same as tests/doubles/misp_api/catalogue.py, from
 * which it is generated); a value is the one of Configure (config.php, then the database),
 * else the definition's default. Edits are cast as PHP does before the test runs, so "false"
 * saves as true and "abc" as 0 (MISP's REST pitfall), and are stored in table system_settings.
 */

class Settings
{
    const REDACTED = '*****';
    const INVALID_INPUT = 'Invalid input. Expected: {"value": "new_setting"}';
    const NOT_WRITEABLE = 'app/Config.config.php is not writeable to the apache user.';

    private static $definitions;

    // name => definition (objects, so that option keys such as "0" stay JSON object keys)
    public static function definitions()
    {
        if (self::$definitions === null) {
            self::$definitions = (array)json_decode(file_get_contents(__DIR__ . '/settings.json'));
        }
        return self::$definitions;
    }

    public static function definition($name)
    {
        return self::definitions()[$name] ?? null;
    }

    public static function value($name)
    {
        $value = Configure::read($name);
        return $value === null ? self::definition($name)->value : $value;
    }

    // What MISP stores for a JSON scalar: trim() makes it a string, then the type's cast.
    public static function cast($definition, $value)
    {
        $text = trim((string)$value);
        if ($definition->type === 'boolean') {
            return (bool)$text;
        }
        if ($definition->type === 'numeric') {
            return (int)$text;
        }
        return $text;
    }

    // true, or MISP's reason for refusing the (already cast) value: the Server::test* methods.
    public static function test($definition, $value)
    {
        switch ($definition->test ?? null) {
            case null:
                return true;
            case 'testBool':
            case 'testLive':
                return is_bool($value) ? true : 'Value is not a boolean.';
            case 'testBoolFalse':
                return $value === false ? true : 'It is highly recommended that this setting is disabled. '
                    . 'Make sure you understand the impact of having this setting turned on.';
            case 'testForNumeric':
                return is_int($value) ? true : 'This setting has to be a number.';
            case 'testForEmpty':
                return trim((string)$value) === '' ? 'Value not set.' : true;
            case 'testBaseURL':
                if ($value === '') {
                    return true;
                }
                if (!preg_match('#^https?://#', $value)) {
                    return 'Invalid baseurl, please make sure that the protocol is set.';
                }
                return substr($value, -1) === '/' ? 'Remove the trailing slash from the baseurl.' : true;
            case 'testLanguage':
                return isset($definition->options->$value) ? true : 'Invalid language.';
            case 'testForPath':
                return preg_match('#^/?([\w.:-]+/?)*$#', $value) ? true : 'Invalid characters in the path.';
            case 'testSalt':
                if ($value === '') {
                    return 'Value not set.';
                }
                if (strpos($value, '"') !== false) {
                    return 'The salt cannot contain a " character.';
                }
                return strlen($value) < 32 ? 'The salt has to be at least 32 characters long.' : true;
            case 'testForEncryptionKey':
                return strlen($value) >= 32 ? true : 'Encryption key must be at least 32 characters long.';
            case 'testPasswordLength':
                return $value < 0 ? 'Length cannot be negative, set a positive integer or 0 (to choose the '
                    . 'default option).' : true;
            case 'testDebug':
                return in_array($value, array(0, 1, 2), true) ? true
                    : 'This setting has to be a number between 0 and 2.';
        }
        throw new LogicException("unknown test {$definition->test}");
    }

    // Into the database (MISP.system_setting_db) or, as MISP without it, into config.php, which
    // the roles mount read-only.
    public static function store($name, $value)
    {
        if (!Configure::read('MISP.system_setting_db')) {
            return self::storeInConfigFile($name, $value);
        }
        $stmt = Misp::db()->prepare('INSERT INTO system_settings (setting, value) VALUES (?, ?) '
            . 'ON DUPLICATE KEY UPDATE value = VALUES(value)');
        $stmt->execute(array($name, json_encode($value)));
        Configure::write($name, $value);
        return true;
    }

    // As MISP's Server::serverSettingsSaveValue: config.php rewritten with the new value.
    private static function storeInConfigFile($name, $value)
    {
        $file = CONFIG . 'config.php';
        if (!is_writable($file)) {
            return self::NOT_WRITEABLE;
        }
        include $file;
        $node = &$config;
        foreach (explode('.', $name) as $key) {
            $node = &$node[$key];
        }
        $node = $value;
        file_put_contents($file, "<?php\n\$config = " . var_export($config, true) . ";\n");
        Configure::write($name, $value);
        return true;
    }

    public static function finalSettings()
    {
        $final = array();
        foreach (self::definitions() as $name => $definition) {
            $value = self::value($name);
            $entry = clone $definition;
            $entry->setting = $name;
            $entry->tab = explode('.', $name)[0];
            $entry->value = $value;
            $verdict = ($value === null || $value === '') ? true : self::test($definition, $value);
            $entry->error = $verdict !== true;
            if ($verdict !== true) {
                $entry->errorMessage = $verdict;
            }
            if (!empty($definition->redacted)) {
                $entry->value = self::REDACTED;
            }
            $final[] = $entry;
        }
        return $final;
    }
}
