import { X509Certificate } from 'node:crypto';
import { TLSSocket, type DetailedPeerCertificate } from 'node:tls';

/** The longest chain a client may present (leaf, intermediates, root), as IoT Hub bounds it. */
const MAX_CHAIN = 10;

/**
 * The certificates a client presented in its TLS handshake, its own first, then the chain it sent
 * with it; undefined when it sent none or the connection is not TLS. The listener asks for a
 * certificate without requiring one, and leaves judging it to the hub: `socket` is the connection's
 * own socket, or the one beneath a WebSocket.
 */
export function presentedCertificates(socket: unknown): X509Certificate[] | undefined {
  if (!(socket instanceof TLSSocket)) return undefined;
  let peer: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  if (!peer?.raw) return undefined;
  const chain: X509Certificate[] = [];
  while (peer?.raw && chain.length < MAX_CHAIN) {
    chain.push(new X509Certificate(peer.raw));
    if (peer.issuerCertificate === peer || peer.issuerCertificate?.fingerprint256 === peer.fingerprint256) break;
    peer = peer.issuerCertificate;
  }
  return chain;
}

/** A certificate's thumbprint as the registry keeps it: upper-case hex, SHA-1 or SHA-256. */
export function thumbprints(cert: X509Certificate): string[] {
  return [cert.fingerprint, cert.fingerprint256].map((f) => f.replace(/:/g, '').toUpperCase());
}

/** The certificate's subject common name. */
export function commonName(cert: X509Certificate): string | undefined {
  return /^CN=(.*)$/m.exec(cert.subject)?.[1];
}

export function isValidAt(cert: X509Certificate, now: Date): boolean {
  return now >= new Date(cert.validFrom) && now <= new Date(cert.validTo);
}

/**
 * True when the chain leads from its first certificate to one of `trusted`: each link issued and
 * signed by the next (an intermediate must be a CA), every certificate valid at `now`.
 */
export function chainsTo(chain: X509Certificate[], trusted: readonly X509Certificate[], now: Date): boolean {
  const issues = (issuer: X509Certificate, cert: X509Certificate) => cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
  let current = chain[0];
  for (let depth = 0; current && depth < MAX_CHAIN; depth++) {
    if (!isValidAt(current, now)) return false;
    const anchor = trusted.find((ca) => issues(ca, current));
    if (anchor) return isValidAt(anchor, now);
    const next = chain.find((cert) => cert !== current && cert.ca && issues(cert, current));
    if (!next) return false;
    current = next;
  }
  return false;
}
