// One device floods the hub with reported-property twin patches (QoS 1, written back to back in one
// go) while another device times QoS 1 round trips (a telemetry publish to its PUBACK, one at a
// time): first on a quiet hub, then beside the flood. Hand-encoded packets (lib/mqtt-wire.ts) on
// both, so that the client side costs little of the two cores.
import { deviceMqttOptions, type MqttTarget } from '../lib/device-auth.js';
import { telemetryBody, telemetryTopic } from '../lib/d2c.js';
import { measureLatency } from '../lib/latency.js';
import { connectWire, publishPacket } from '../lib/mqtt-wire.js';
import { nowMs } from '../lib/stats.js';
import { workerMain } from '../lib/worker-main.js';

const REPORTED = '$iothub/twin/PATCH/properties/reported/';

workerMain<{ target: MqttTarget; flooderId: string; probeId: string; patches: number; quietSamples: number; timeMs: number }>(
  async (config) => {
    let acknowledged: () => void = () => {};
    const probe = await connectWire(deviceMqttOptions(config.target, config.probeId), () => acknowledged());
    let patchesAcked = 0;
    let floodEnded: () => void = () => {};
    const flood = new Promise<void>((resolve) => (floodEnded = resolve));
    const flooder = await connectWire(deviceMqttOptions(config.target, config.flooderId), () => {
      if (++patchesAcked === config.patches) floodEnded();
    });

    const body = telemetryBody(200);
    const roundTrip = (seq: number) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no PUBACK for publish ${seq} within 30 s`)), 30_000);
        acknowledged = () => {
          clearTimeout(timer);
          resolve();
        };
        probe.write(publishPacket(telemetryTopic(config.probeId, 'fairness', seq), (seq % 65535) + 1, body));
      });

    const quiet = await measureLatency(roundTrip, { count: config.quietSamples, lanes: 1, timeMs: config.timeMs });
    const patches = Buffer.concat(
      Array.from({ length: config.patches }, (_, i) =>
        publishPacket(`${REPORTED}?$rid=${i + 1}`, (i % 65535) + 1, Buffer.from(JSON.stringify({ flood: i }))),
      ),
    );
    let flooding = true;
    const floodStart = nowMs();
    const floodDone = flood.then(() => {
      flooding = false;
      return nowMs() - floodStart;
    });
    flooder.write(patches);
    const beside = await measureLatency((i) => roundTrip(config.quietSamples + i), {
      count: Infinity,
      lanes: 1,
      timeMs: config.timeMs,
      while: () => flooding,
    });
    const floodMs = await Promise.race([floodDone, new Promise<number>((resolve) => setTimeout(() => resolve(NaN), config.timeMs))]);
    probe.end();
    flooder.end();
    return { quiet, beside, floodMs, patchesAcked };
  },
);
