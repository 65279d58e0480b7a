<?php
// The webhook backend of examples/backend/Caddyfile, in plain PHP 8.
//
//   WEBHOOK_SECRET=... php -S 127.0.0.1:9000 examples/backend/php/index.php
//
// Behind php-fpm it works the same: point the three hook URLs at this file.
// Every call is verified (signature, timestamp, hook) before it is read.

declare(strict_types=1);

const MAX_SKEW = 300; // seconds a call's timestamp may be away from our clock

function reply(int $status, ?array $body = null): void
{
    http_response_code($status);
    if ($body !== null) {
        header('Content-Type: application/json');
        echo json_encode($body, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE);
    }
}

function logLine(string $line): void
{
    error_log('backend: ' . $line);
}

// verified returns the decoded call, or null after answering 401/400.
function verified(string $secret): ?array
{
    $body = file_get_contents('php://input');
    $ts = $_SERVER['HTTP_X_SOCKETIO_TIMESTAMP'] ?? '';
    $hook = $_SERVER['HTTP_X_SOCKETIO_HOOK'] ?? '';
    $sig = $_SERVER['HTTP_X_SOCKETIO_SIGNATURE'] ?? '';
    // The path as Caddy sent it: escaped, without the query.
    $path = (string) parse_url($_SERVER['REQUEST_URI'] ?? '', PHP_URL_PATH);

    if (!ctype_digit($ts) || abs(time() - (int) $ts) > MAX_SKEW) {
        logLine("refused: timestamp '$ts' missing or more than " . MAX_SKEW . 's away');
        reply(401);
        return null;
    }
    $want = 'sha256=' . hash_hmac('sha256', "$ts.$hook.$path.$body", $secret);
    if (!hash_equals($want, $sig)) {
        logLine("refused: bad signature on $path");
        reply(401);
        return null;
    }
    $call = json_decode($body, true);
    if (!is_array($call) || ($call['type'] ?? null) !== $hook) {
        logLine("refused: hook header '$hook' does not match the body");
        reply(400);
        return null;
    }
    return $call;
}

function onConnect(array $call): void
{
    $user = $call['claims']['sub'] ?? '';
    if (!is_string($user) || $user === '') {
        reply(200, ['error' => ['message' => 'please log in', 'data' => ['login' => '/login']]]);
        return;
    }
    $sid = $call['socket'] ?? '';
    logLine("connect $user ($sid)");
    reply(200, ['rooms' => ["user-$user", 'lobby'], 'data' => ['user' => $user]]);
}

function onEvent(array $call): void
{
    $user = $call['data']['user'] ?? 'someone';
    $event = $call['event'] ?? '';
    $args = $call['args'] ?? [];
    if ($event !== 'chat') {
        reply(200, ['error' => "unknown event $event"]);
        return;
    }
    $text = is_string($args[0] ?? null) ? $args[0] : '';
    logLine("event chat from $user: $text");
    reply(200, [
        'ack' => ['delivered'],
        'actions' => [
            ['emit' => ['rooms' => ['lobby'], 'except' => [$call['socket'] ?? ''], 'event' => 'chat',
                'args' => [['from' => $user, 'text' => $text]]]],
        ],
    ]);
}

function onDisconnect(array $call): void
{
    $user = $call['data']['user'] ?? 'someone';
    $reason = $call['reason'] ?? '';
    $sid = $call['socket'] ?? '';
    logLine("disconnect $user ($sid): $reason");
    reply(204);
}

$secret = getenv('WEBHOOK_SECRET');
if ($secret === false || $secret === '') {
    logLine('WEBHOOK_SECRET is not set');
    reply(500);
    return;
}

$path = (string) parse_url($_SERVER['REQUEST_URI'] ?? '', PHP_URL_PATH);
if (!str_starts_with($path, '/socket/')) {
    // The rest of the site.
    header('Content-Type: text/plain');
    echo "backend is up\n";
    return;
}
if ($_SERVER['REQUEST_METHOD'] !== 'POST') {
    reply(405);
    return;
}
$call = verified($secret);
if ($call === null) {
    return;
}
switch ($call['type']) {
    case 'connect':
        onConnect($call);
        break;
    case 'event':
        onEvent($call);
        break;
    case 'disconnect':
        onDisconnect($call);
        break;
    default:
        reply(400, ['error' => 'unknown hook']);
}
