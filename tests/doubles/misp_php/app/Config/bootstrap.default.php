<?php
// Double of MISP's app/Config/bootstrap.default.php (see app/Lib/Cake.php): the runtime
// configuration is config.php, then every plugin of app/Plugin.
Configure::load('config');
CakePlugin::loadAll();
