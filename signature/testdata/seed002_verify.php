<?php
// Seed 002 (Popsee's documentation): its PHP verifyWebhook, copied unchanged
// (the indentation restored), and its usage with the request read from the
// command line instead of the web server:
// WEBHOOK_SECRET=... php seed002_verify.php X_WEBHOOK_SIGNATURE < body
function verifyWebhook($payload, $signature, $secret) {
    $expected = 'sha256=' . hash_hmac('sha256', $payload, $secret);
    return hash_equals($expected, $signature);
}

// Usage
$payload = file_get_contents('php://stdin');
$signature = $argv[1] ?? '';
$secret = getenv('WEBHOOK_SECRET');

if (!verifyWebhook($payload, $signature, $secret)) {
    fwrite(STDERR, "Invalid signature\n");
    exit(1);
}
