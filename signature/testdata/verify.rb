require 'openssl'

TOLERANCE_SECONDS = 5 * 60
BASE64 = %r{\A(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?\z}

# X-Webhook-Signature: one or more space-separated "sha256=<hex>" values.
def verify_signature(payload, header, secret)
  expected = 'sha256=' + OpenSSL::HMAC.hexdigest('SHA256', secret, payload)
  header.to_s.split(' ').any? { |sig| OpenSSL.secure_compare(expected, sig) }
end

# whsec_<base64> secrets use the decoded bytes, other secrets their own bytes.
def standard_key(secret)
  rest = secret.delete_prefix('whsec_')
  if secret.start_with?('whsec_') && !rest.empty? && rest.match?(BASE64)
    return rest.unpack1('m0')
  end
  secret.b
end

# Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature.
def verify_standard(payload, msg_id, timestamp, header, secret)
  return false if msg_id.to_s.empty? || !timestamp.to_s.match?(/\A[0-9]+\z/)
  ts = timestamp.to_i
  # too old or too new: a replay or a wrong clock
  return false if (Time.now.to_i - ts).abs > TOLERANCE_SECONDS
  mac = OpenSSL::HMAC.digest('SHA256', standard_key(secret), "#{msg_id}.#{ts}.".b + payload.b)
  expected = 'v1,' + [mac].pack('m0')
  header.to_s.split(' ').any? { |sig| OpenSSL.secure_compare(expected, sig) }
end

if __FILE__ == $PROGRAM_NAME
  # ruby verify.rb SECRET X_WEBHOOK_SIGNATURE WEBHOOK_ID WEBHOOK_TIMESTAMP WEBHOOK_SIGNATURE < body
  secret, signature, msg_id, timestamp, standard = ARGV
  body = $stdin.binmode.read
  ok = true
  unless verify_signature(body, signature, secret)
    warn 'X-Webhook-Signature does not verify'
    ok = false
  end
  unless verify_standard(body, msg_id, timestamp, standard, secret)
    warn 'webhook-signature does not verify'
    ok = false
  end
  exit(ok ? 0 : 1)
end
