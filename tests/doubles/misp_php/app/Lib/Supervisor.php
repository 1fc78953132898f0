<?php
/*
 * Double of MISP's application (see app/Lib/Cake.php): the XML-RPC call MISP's
 * BackgroundJobsTool makes to supervisord (SimpleBackgroundJobs.supervisor_host, _port, _user,
 * _password; http://<host>:<port>/RPC2), supervisor.getAllProcessInfo.
 */

class Supervisor
{
    // Each process as array(group, name, pid, statename); RuntimeException when unreachable.
    public static function processes()
    {
        $host = Configure::read('SimpleBackgroundJobs.supervisor_host') ?: 'localhost';
        $port = (int)(Configure::read('SimpleBackgroundJobs.supervisor_port') ?: 9001);
        $request = '<?xml version="1.0"?><methodCall><methodName>supervisor.getAllProcessInfo</methodName>'
            . '<params/></methodCall>';
        $curl = curl_init("http://$host:$port/RPC2");
        curl_setopt_array($curl, array(
            CURLOPT_POST => true,
            CURLOPT_POSTFIELDS => $request,
            CURLOPT_HTTPHEADER => array('Content-Type: text/xml'),
            CURLOPT_USERPWD => Configure::read('SimpleBackgroundJobs.supervisor_user') . ':'
                . Configure::read('SimpleBackgroundJobs.supervisor_password'),
            CURLOPT_RETURNTRANSFER => true,
            CURLOPT_TIMEOUT => 5,
        ));
        $body = curl_exec($curl);
        $status = curl_getinfo($curl, CURLINFO_RESPONSE_CODE);
        if ($body === false || $status !== 200) {
            $reason = $body === false ? curl_error($curl) : "HTTP $status";
            throw new RuntimeException("supervisord at $host:$port: $reason");
        }
        $xml = simplexml_load_string($body);
        if ($xml === false || isset($xml->fault)) {
            throw new RuntimeException("supervisord at $host:$port: fault or unreadable answer");
        }
        $processes = array();
        foreach ($xml->params->param->value->array->data->value as $value) {
            $process = array();
            foreach ($value->struct->member as $member) {
                $v = $member->value;
                $process[(string)$member->name] = isset($v->int) ? (int)$v->int
                    : (string)(isset($v->string) ? $v->string : $v);
            }
            $processes[] = $process;
        }
        return $processes;
    }
}
