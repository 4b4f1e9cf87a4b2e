# Make a Bridgekeeper custom token, in Ruby (ruby-jwt).
#
# Your server runs this (or the same few lines) for a user it has already
# authenticated, and hands the token to your app, which posts it to
# `POST /v1/apps/{app_id}/login/custom-token` as `{"token": "..."}`.
# The claims are Skygear's, byte for byte: `sub`, `iat`, `exp` (at most one
# hour after `iat`) and `skyprofile`, signed HS256 with the app's custom-token
# secret. See docs/custom-tokens.md.
#
# Run:  gem install jwt      (Debian: apt-get install ruby-jwt)
#       BRIDGEKEEPER_CUSTOM_TOKEN_SECRET=... ruby make_token.rb USER_ID [EMAIL [USERNAME]]
# (or give the user in BRIDGEKEEPER_USER_ID, BRIDGEKEEPER_USER_EMAIL,
# BRIDGEKEEPER_USER_USERNAME). Prints the token on stdout.

require 'jwt'
require 'securerandom'

def arg(index, env, default = nil)
  ARGV.fetch(index) { ENV.fetch(env, default) }
end

custom_token_secret = ENV['BRIDGEKEEPER_CUSTOM_TOKEN_SECRET']
user_id = arg(0, 'BRIDGEKEEPER_USER_ID') # User id of your server, 1-36 characters
if user_id.to_s.empty? || custom_token_secret.to_s.empty?
  abort 'usage: BRIDGEKEEPER_CUSTOM_TOKEN_SECRET=... ruby make_token.rb USER_ID [EMAIL [USERNAME]]'
end
now_seconds = Time.now.to_i # an integer: Bridgekeeper refuses float times

payload = {
  :sub => user_id,
  :iat => now_seconds,
  :exp => now_seconds + (60 * 60), # expire within 1 hour
  # Not in Skygear's example; we recommend it. A token is accepted once, and two
  # tokens made for one user in the same second are otherwise identical, so the
  # second would be refused as token_replayed. A unique jti tells them apart.
  :jti => SecureRandom.uuid,
  :skyprofile => {
    :email => arg(1, 'BRIDGEKEEPER_USER_EMAIL', ''),
    :username => arg(2, 'BRIDGEKEEPER_USER_USERNAME', 'user')
  }
}

token = JWT.encode payload, custom_token_secret, 'HS256'
puts token
