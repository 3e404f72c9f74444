import type { Duplex } from 'node:stream';

/**
 * The largest MQTT packet the hub takes. IoT Hub's messages are at most 256 KB; twice that leaves
 * room for topics and properties while a frame that claims hundreds of megabytes is refused at its
 * header, before anything is buffered.
 */
export const MAX_PACKET_BYTES = 512 * 1024;

/**
 * Follows MQTT frame boundaries in the bytes a client sends (fixed header byte, remaining length
 * as a variable byte integer of at most 4 bytes, then that many bytes) and says when a frame is
 * too large or its length malformed.
 */
export class MqttFrameGuard {
  private inHeader = true;
  private lengthBytes = 0;
  private length = 0;
  private bodyLeft = 0;

  constructor(private readonly maxBytes = MAX_PACKET_BYTES) {}

  /** False as soon as the stream holds a frame the hub refuses. */
  feed(chunk: Buffer): boolean {
    let i = 0;
    while (i < chunk.length) {
      if (this.bodyLeft > 0) {
        const skip = Math.min(this.bodyLeft, chunk.length - i);
        this.bodyLeft -= skip;
        i += skip;
        continue;
      }
      const byte = chunk[i++];
      if (this.inHeader) {
        this.inHeader = false; // the packet type byte; the length follows
        continue;
      }
      this.length += (byte & 0x7f) * 128 ** this.lengthBytes++;
      if (this.length > this.maxBytes || (byte & 0x80 && this.lengthBytes === 4)) return false;
      if (byte & 0x80) continue;
      this.bodyLeft = this.length;
      this.inHeader = true;
      this.lengthBytes = 0;
      this.length = 0;
    }
    return true;
  }
}

/**
 * Closes a client's connection when it sends a frame above the limit: only that connection. It
 * watches what the broker reads ('data' fires on each read while the broker's 'readable' listener
 * keeps control of the flow), so nothing is copied or re-streamed.
 */
export function guardFrames(stream: Duplex, maxBytes = MAX_PACKET_BYTES): void {
  const guard = new MqttFrameGuard(maxBytes);
  const onData = (chunk: Buffer) => {
    if (guard.feed(chunk)) return;
    stream.off('data', onData);
    stream.destroy();
  };
  stream.on('data', onData);
}
