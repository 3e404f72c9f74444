// Preloaded into a CLI subprocess (NODE_OPTIONS=--import=...): name resolution fails for names under
// .invalid as it does on a machine without DNS, with Node's own error. `eai-again.invalid` fails with
// EAI_AGAIN (no answer from a resolver: offline, or none configured), any other such name with
// ENOTFOUND (no such name). Every other name resolves as usual, so the local hub stays reachable.
import dns from 'node:dns';

type Callback = (err: NodeJS.ErrnoException | null, address?: unknown, family?: number) => void;

const lookup = dns.lookup;
(dns as { lookup: unknown }).lookup = function (hostname: string, options: unknown, callback?: Callback) {
  const done = (typeof options === 'function' ? options : callback) as Callback;
  if (!hostname.endsWith('.invalid')) return (lookup as (...args: unknown[]) => unknown).call(dns, hostname, options, callback);
  const code = hostname === 'eai-again.invalid' ? 'EAI_AGAIN' : 'ENOTFOUND';
  const err = Object.assign(new Error(`getaddrinfo ${code} ${hostname}`), { code, syscall: 'getaddrinfo', hostname });
  process.nextTick(done, err);
};
