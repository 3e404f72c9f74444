// Just enough MQTT 3.1.1 on a TLS socket for a load generator: CONNECT, QoS 1 PUBLISH encoded by
// hand into one buffer each, and a reader for CONNACK and PUBACK. mqtt.js spends more CPU per
// publish than the broker it measures; this keeps the publisher out of the way.
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { IClientOptions } from 'mqtt';
import type { SecureContext } from 'node:tls';

function utf8Field(text: string): Buffer {
  const bytes = Buffer.from(text);
  const field = Buffer.allocUnsafe(2 + bytes.length);
  field.writeUInt16BE(bytes.length, 0);
  bytes.copy(field, 2);
  return field;
}

function remainingLength(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return out;
}

function packet(firstByte: number, parts: Buffer[]): Buffer {
  const length = parts.reduce((n, p) => n + p.length, 0);
  return Buffer.concat([Buffer.from([firstByte, ...remainingLength(length)]), ...parts]);
}

function connectPacket(o: { clientId: string; username: string; password: string; keepalive: number; clean: boolean }): Buffer {
  const header = Buffer.from([0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 0xc0 | (o.clean ? 2 : 0), o.keepalive >> 8, o.keepalive & 0xff]);
  return packet(0x10, [header, utf8Field(o.clientId), utf8Field(o.username), utf8Field(o.password)]);
}

/** A QoS 1 PUBLISH of `body` to `topic` with packet id `id`. */
export function publishPacket(topic: string, id: number, body: Buffer): Buffer {
  const topicLength = Buffer.byteLength(topic);
  const length = 2 + topicLength + 2 + body.length;
  const head = remainingLength(length);
  const out = Buffer.allocUnsafe(1 + head.length + length);
  out[0] = 0x32;
  let at = 1;
  for (const b of head) out[at++] = b;
  out.writeUInt16BE(topicLength, at);
  at += 2 + out.write(topic, at + 2);
  out.writeUInt16BE(id, at);
  body.copy(out, at + 2);
  return out;
}

/** One device connection: `onPuback(id)` per acknowledgement; resolves once CONNACK accepted it. */
export function connectWire(
  options: IClientOptions & { secureContext: SecureContext },
  onPuback: (id: number) => void,
): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: options.host!, port: options.port!, secureContext: options.secureContext, servername: 'localhost' });
    socket.setNoDelay(true);
    let pending: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      // Packets the broker sends these clients are small: a one-byte remaining length.
      while (pending.length >= 2 && pending.length >= 2 + pending[1]!) {
        const type = pending[0]! >> 4;
        if (type === 4) onPuback(pending.readUInt16BE(2));
        else if (type === 2) {
          if (pending[3] !== 0) return reject(new Error(`CONNACK refused: ${pending[3]}`));
          resolve(socket);
        }
        pending = pending.subarray(2 + pending[1]!);
      }
    });
    socket.once('error', reject);
    socket.once('close', () => reject(new Error('closed')));
    socket.write(
      connectPacket({
        clientId: options.clientId!,
        username: options.username!,
        password: String(options.password),
        keepalive: options.keepalive ?? 240,
        clean: options.clean ?? true,
      }),
    );
  });
}
