-- Double of MISP's INSTALL/MYSQL.sql (see app/Lib/Cake.php): the tables the double uses at
-- database version 1; `cake Admin runUpdates` adds system_settings and jobs.
CREATE TABLE attributes (
  id int NOT NULL AUTO_INCREMENT PRIMARY KEY,
  event_id int NOT NULL,
  type varchar(100) NOT NULL,
  value1 text NOT NULL
);
CREATE TABLE users (
  id int NOT NULL AUTO_INCREMENT PRIMARY KEY,
  email varchar(255) NOT NULL UNIQUE,
  authkey varchar(255),
  role_id int NOT NULL DEFAULT 3,
  org_id int NOT NULL DEFAULT 1,
  change_pw tinyint NOT NULL DEFAULT 0
);
CREATE TABLE admin_settings (
  id int NOT NULL AUTO_INCREMENT PRIMARY KEY,
  setting varchar(255) NOT NULL UNIQUE,
  value text NOT NULL
);
INSERT INTO admin_settings (setting, value) VALUES ('db_version', '1');
-- Advanced API keys (Security.advanced_authkeys): bcrypt hashes, found by their first and last
-- four characters; expiration 0 never expires.
CREATE TABLE auth_keys (
  id int NOT NULL AUTO_INCREMENT PRIMARY KEY,
  authkey varchar(72) NOT NULL,
  authkey_start varchar(4) NOT NULL,
  authkey_end varchar(4) NOT NULL,
  created int NOT NULL,
  expiration int NOT NULL DEFAULT 0,
  user_id int NOT NULL,
  comment text
);
