<?php
// Double of MISP's app/Config/core.default.php (see app/Lib/Cake.php): sessions use PHP's own
// handler, which the php-fpm pool of roles/misp_common points at Redis.
Configure::write('Session', array('defaults' => 'php', 'timeout' => 60));
