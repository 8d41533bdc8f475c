// Verify a Sigstore bundle with the Sigstore project's own verifier (@sigstore/verify), using a
// public key and no transparency log or timestamp authority (the test installs the npm packages).
// usage: node verify_bundle.js BUNDLE.json KEY.pub SHA256_HEX
// exit 0 and "verified ..." when the bundle verifies and its statement names the digest; 1 otherwise.
'use strict';
const fs = require('fs');
const crypto = require('crypto');
const { bundleFromJSON, assertBundleLatest } = require('@sigstore/bundle');
const { Verifier, toSignedEntity, toTrustMaterial } = require('@sigstore/verify');

const [bundlePath, keyPath, wantHex] = process.argv.slice(2);
try {
  const bundle = bundleFromJSON(JSON.parse(fs.readFileSync(bundlePath, 'utf8')));
  assertBundleLatest(bundle);
  const publicKey = crypto.createPublicKey(fs.readFileSync(keyPath));
  const root = { mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1', tlogs: [], ctlogs: [],
                 certificateAuthorities: [], timestampAuthorities: [] };
  const trust = toTrustMaterial(root, () => ({ publicKey, validFor: () => true }));
  const verifier = new Verifier(trust, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 });
  verifier.verify(toSignedEntity(bundle));
  const statement = JSON.parse(Buffer.from(bundle.content.dsseEnvelope.payload).toString('utf8'));
  const subject = statement.subject[0];
  if (subject.digest.sha256 !== wantHex) {
    throw new Error(`statement names sha256:${subject.digest.sha256}, not sha256:${wantHex}`);
  }
  console.log(`verified ${statement.predicateType} for ${subject.name}@sha256:${subject.digest.sha256}`);
} catch (err) {
  console.error(`refused: ${err.code || err.name}: ${err.message}`);
  process.exit(1);
}
