# Seed 002 (Popsee's documentation): its Ruby verify_webhook, copied
# unchanged (the indentation restored), with Rack (which Sinatra loads) for
# Rack::Utils.secure_compare, and a command-line wrapper instead of the
# Sinatra route: WEBHOOK_SECRET=... ruby seed002_verify.rb X_WEBHOOK_SIGNATURE < body
require 'rack'

require 'openssl'
def verify_webhook(payload, signature, secret)
  expected = 'sha256=' + OpenSSL::HMAC.hexdigest('SHA256', secret, payload)
  Rack::Utils.secure_compare(expected, signature)
end

payload = $stdin.binmode.read
signature = ARGV[0] || ''
exit(verify_webhook(payload, signature, ENV['WEBHOOK_SECRET']) ? 0 : 1)
