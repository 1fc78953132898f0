<?php
// Double of MISP's app/Config/config.default.php (see app/Lib/Cake.php).
$config = array(
    'debug' => 0,
    'MISP' => array('baseurl' => '', 'system_setting_db' => false, 'background_jobs' => true),
);
