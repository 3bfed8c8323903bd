// Re-encodes and re-verifies the oracle's signed scores with the official
// Sui BCS package and noble-secp256k1, so the Python encoding cannot drift
// from what a Move contract reads.
//
// Input (stdin): {"cases": [{"timestamp_ms", "score", "wallet_address",
//   "secret_key", "public_key", "signature", "message"}]}, hex strings.
// Output (stdout): one result per case: the BCS bytes @mysten/bcs produces,
// whether noble verifies the Python signature, and noble's own signature.
import { bcs } from '@mysten/bcs';
import * as secp from '@noble/secp256k1';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';

secp.hashes.sha256 = sha256;
secp.hashes.hmacSha256 = (key, message) => hmac(sha256, key, message);

const ScoreUpdatePayload = bcs.struct('ScoreUpdatePayload', {
  score: bcs.u64(),
  wallet_address: bcs.string(),
});

const IntentMessage = bcs.struct('IntentMessage', {
  intent: bcs.u8(),
  timestamp_ms: bcs.u64(),
  data: ScoreUpdatePayload,
});

const fromHex = (text) => Uint8Array.from(Buffer.from(text, 'hex'));
const toHex = (bytes) => Buffer.from(bytes).toString('hex');

function check(testCase) {
  const message = IntentMessage.serialize({
    intent: 0,
    timestamp_ms: BigInt(testCase.timestamp_ms),
    data: { score: BigInt(testCase.score), wallet_address: testCase.wallet_address },
  }).toBytes();

  const publicKey = fromHex(testCase.public_key);
  const signature = fromHex(testCase.signature);
  return {
    message: toHex(message),
    public_key: toHex(secp.getPublicKey(fromHex(testCase.secret_key), true)),
    verifies: secp.verify(signature, fromHex(testCase.message), publicKey),
    signature: toHex(secp.sign(message, fromHex(testCase.secret_key))),
  };
}

const input = JSON.parse(await new Promise((resolve) => {
  let text = '';
  process.stdin.on('data', (chunk) => { text += chunk; });
  process.stdin.on('end', () => resolve(text));
}));
process.stdout.write(JSON.stringify({ results: input.cases.map(check) }));
