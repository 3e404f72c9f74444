import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import mqttPacket from 'mqtt-packet';
import { checkTransport, createDeviceClient, DEVICE_TRANSPORTS } from '../../src/clients/device-clients.js';
import { parseConnection } from '../../src/clients/connection-string.js';
import { ExitCode, ToolkitError } from '../../src/clients/errors.js';

// The device SDK's transports as the toolkit chooses them: every one against a real IoT Hub (no CA,
// no port given), every one against the local hub where it serves the feature, and a transport without a
// feature the app uses refused before anything connects. No network here: clients are made, not opened.

const KEY = Buffer.from('a device key of thirty-two bytes').toString('base64');
const azure = parseConnection('device', `HostName=myhub.azure-devices.net;DeviceId=d1;SharedAccessKey=${KEY}`);
const local = parseConnection('device', `HostName=localhost;DeviceId=d1;SharedAccessKey=${KEY}`, { ca: 'a CA', port: 8883 });

function refused(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => err instanceof ToolkitError && err.exitCode === ExitCode.usage && pattern.test(err.message));
}

test('against a real IoT Hub every transport of the SDK is used, each with its own class', async () => {
  const classes: Record<string, string> = { mqtt: 'Mqtt', 'mqtt-ws': 'MqttWs', amqp: 'Amqp', 'amqp-ws': 'AmqpWs', http: 'Http' };
  assert.deepEqual(DEVICE_TRANSPORTS, Object.keys(classes));
  for (const transport of DEVICE_TRANSPORTS) {
    const client = await createDeviceClient(azure, transport, { features: ['telemetry'] });
    try {
      // The SDK keeps its transport on the client; its class is the transport asked for.
      assert.equal((client as unknown as { _transport: object })._transport.constructor.name, classes[transport], transport);
    } finally {
      await client.close();
    }
  }
});

test('the local hub serves every feature over AMQP and AMQP over WebSockets, and what MQTT and HTTPS serve', () => {
  for (const transport of ['amqp', 'amqp-ws'] as const) checkTransport(transport, ['telemetry', 'c2d', 'methods', 'twin'], local.transport);
  for (const transport of ['mqtt', 'mqtt-ws', 'http'] as const) checkTransport(transport, ['telemetry'], local.transport);
});

test('twins and methods over http are refused, naming the transports that have them (AMQP too)', async () => {
  refused(
    () => checkTransport('http', ['methods', 'twin'], azure.transport),
    /^the device SDK offers no direct methods and device twins over http: use --transport mqtt, mqtt-ws, amqp or amqp-ws\.$/,
  );
  refused(
    () => checkTransport('http', ['twin'], local.transport),
    /device twins over http: use --transport mqtt, mqtt-ws, amqp or amqp-ws\.$/,
  );
  await assert.rejects(createDeviceClient(azure, 'http', { features: ['twin'] }), ToolkitError);
  checkTransport('amqp', ['methods', 'twin'], azure.transport);
});

test("mqtt-packet's cache of a Buffer per packet id stays off: in the device SDK's copy once its MQTT transport loads, and in the hub's", async () => {
  // Filled at the first packet written, it cost a device command a sixth of its CPU (CONTRIBUTING.md).
  const client = await createDeviceClient(local, 'mqtt');
  await client.close();
  const fromSdk = createRequire(createRequire(import.meta.url).resolve('azure-iot-device-mqtt'));
  const sdkPackets = createRequire(fromSdk.resolve('mqtt'))('mqtt-packet') as typeof mqttPacket;
  assert.notEqual(sdkPackets, mqttPacket, "the SDK's mqtt has its own mqtt-packet");
  assert.equal(sdkPackets.writeToStream.cacheNumbers, false);
  await import('../../src/hub/device-gateway/mqtt-gateway.js');
  assert.equal(mqttPacket.writeToStream.cacheNumbers, false);
});
