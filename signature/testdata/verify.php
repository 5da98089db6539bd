<?php
const TOLERANCE_SECONDS = 5 * 60;

// X-Webhook-Signature: one or more space-separated "sha256=<hex>" values.
function verify_signature(string $payload, string $header, string $secret): bool
{
    $expected = 'sha256=' . hash_hmac('sha256', $payload, $secret);
    foreach (explode(' ', $header) as $sig) {
        if (hash_equals($expected, $sig)) {
            return true;
        }
    }
    return false;
}

// whsec_<base64> secrets use the decoded bytes, other secrets their own bytes.
function standard_key(string $secret): string
{
    $rest = substr($secret, strlen('whsec_'));
    $base64 = '~^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$~D';
    if (str_starts_with($secret, 'whsec_') && $rest !== '' && preg_match($base64, $rest)) {
        return base64_decode($rest, true);
    }
    return $secret;
}

// Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature.
function verify_standard(string $payload, string $msgId, string $timestamp,
                         string $header, string $secret): bool
{
    if ($msgId === '' || !preg_match('/^[0-9]+$/D', $timestamp)) {
        return false;
    }
    $ts = (int) $timestamp;
    if (abs(time() - $ts) > TOLERANCE_SECONDS) {
        return false; // too old or too new: a replay or a wrong clock
    }
    $mac = hash_hmac('sha256', "$msgId.$ts." . $payload, standard_key($secret), true);
    $expected = 'v1,' . base64_encode($mac);
    foreach (explode(' ', $header) as $sig) {
        if (hash_equals($expected, $sig)) {
            return true;
        }
    }
    return false;
}

if (PHP_SAPI === 'cli' && realpath($argv[0]) === __FILE__) {
    // php verify.php SECRET X_WEBHOOK_SIGNATURE WEBHOOK_ID WEBHOOK_TIMESTAMP WEBHOOK_SIGNATURE < body
    [, $secret, $signature, $msgId, $timestamp, $standard] = $argv;
    $body = file_get_contents('php://stdin');
    $ok = true;
    if (!verify_signature($body, $signature, $secret)) {
        fwrite(STDERR, "X-Webhook-Signature does not verify\n");
        $ok = false;
    }
    if (!verify_standard($body, $msgId, $timestamp, $standard, $secret)) {
        fwrite(STDERR, "webhook-signature does not verify\n");
        $ok = false;
    }
    exit($ok ? 0 : 1);
}
