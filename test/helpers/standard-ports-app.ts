// Run by test/cli/standard-ports.test.ts inside a private network namespace (IoT Hub's ports are free there).
// `driver`: starts `hub start --standard-ports`, uses the toolkit against it, runs this file again as
// `app` with nothing but NODE_EXTRA_CA_CERTS, stops the hub and prints one JSON line of what happened.
// `app`: an SDK app written for Azure IoT Hub, unchanged: connection strings as `hub start` prints them
// (no GatewayHostName, no port, no agent), MQTT on 8883, AMQPS on 5671, MQTT and AMQP over WebSockets,
// HTTPS and REST on 443.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import iothub from 'azure-iothub';
import deviceSdk from 'azure-iot-device';
import mqttTransport from 'azure-iot-device-mqtt';
import amqpTransport from 'azure-iot-device-amqp';
import httpTransport from 'azure-iot-device-http';
import { CliProcess, runCli } from './cli.js';

async function app(serviceConnectionString: string): Promise<object> {
  const registry = iothub.Registry.fromConnectionString(serviceConnectionString);
  const created: any = (await registry.create({ deviceId: 'unchanged-app' })).responseBody;
  const host = /HostName=([^;]+)/.exec(serviceConnectionString)![1];
  const deviceConnectionString = `HostName=${host};DeviceId=unchanged-app;SharedAccessKey=${created.authentication.symmetricKey.primaryKey}`;
  const opened: string[] = [];
  for (const [name, Transport] of [
    ['mqtt', mqttTransport.Mqtt],
    ['mqttws', mqttTransport.MqttWs],
    ['amqp', amqpTransport.Amqp],
    ['amqpws', amqpTransport.AmqpWs],
    ['http', httpTransport.Http],
  ] as const) {
    const client = deviceSdk.Client.fromConnectionString(deviceConnectionString, Transport);
    // The model id is announced at connect over MQTT (IoT Hub's Plug and Play is MQTT's and AMQP's).
    if (name.startsWith('mqtt')) await client.setOptions({ modelId: 'dtmi:com:example:Thermostat;1' });
    await client.open();
    await client.sendEvent(new deviceSdk.Message(JSON.stringify({ transport: name })));
    opened.push(name);
    await client.close();
  }
  const twin: any = (await registry.getTwin('unchanged-app')).responseBody;
  const digitalTwin: any = await new iothub.DigitalTwinClient(new iothub.IoTHubTokenCredentials(serviceConnectionString)).getDigitalTwin(
    'unchanged-app',
  );
  return { opened, modelId: twin.modelId, model: digitalTwin.$metadata?.$model };
}

async function driver(): Promise<object> {
  const hub = new CliProcess(['hub', 'start', '--standard-ports', '--in-memory', '--amqp-port', '0', '--json', '--show-secrets']);
  try {
    const started = await hub
      .waitFor((line) => line?.event === 'started', 60_000)
      .catch((err) => {
        throw new Error(`${err.message}: ${hub.stderr}`);
      });
    // The toolkit's own commands: REST (443), MQTT (8883) and MQTT over WebSockets (443), with no port of their own.
    const toolkit = { code: 0 as number | null, stderr: '' };
    for (const args of [['create-device'], ['send-telemetry', '--count', '1'], ['send-telemetry', '--count', '1', '--websocket']]) {
      const step = await runCli([...args, '--json']);
      if (step.code !== 0) Object.assign(toolkit, { code: step.code, stderr: `${args.join(' ')}: ${step.stderr}` });
    }
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'app', started.serviceConnectionString], {
      env: { ...process.env, NODE_EXTRA_CA_CERTS: started.caFile },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let output = '';
    child.stdout.on('data', (c) => (output += c));
    const [code] = await once(child, 'close');
    return { started, toolkit, app: { code, result: output ? JSON.parse(output) : undefined } };
  } finally {
    await hub.stop();
  }
}

const [mode, argument] = process.argv.slice(2);
const result = mode === 'app' ? await app(argument!) : await driver();
process.stdout.write(JSON.stringify(result) + '\n');
process.exit(0);
