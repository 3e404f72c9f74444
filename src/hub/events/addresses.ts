// Event Hubs names entities by path: token audiences are URIs (sb://host:port/hub/...), link
// addresses are paths (hub/ConsumerGroups/$Default/Partitions/0), and names are case-insensitive.

/** The entity path of an audience or address: no scheme and host, no slashes around it. */
export function entityPath(addressOrAudience: string): string {
  return addressOrAudience.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/]*/i, '').replace(/^\/+|\/+$/g, '');
}

export function sameName(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

/** Whether a token granted for `grantedPath` reaches `path` (a SAS token covers everything under it). */
export function pathCovers(grantedPath: string, path: string): boolean {
  const granted = grantedPath.toLowerCase();
  const wanted = path.toLowerCase();
  return granted === '' || wanted === granted || wanted.startsWith(`${granted}/`);
}

export interface PartitionAddress {
  hubName: string;
  consumerGroup: string;
  partitionId: string;
}

/** `<hub>/ConsumerGroups/<group>/Partitions/<id>`, the address an Event Hubs receiver attaches to. */
export function parsePartitionAddress(address: string): PartitionAddress | undefined {
  const match = /^([^/]+)\/ConsumerGroups\/([^/]+)\/Partitions\/([^/]+)$/i.exec(entityPath(address));
  if (!match) return undefined;
  return { hubName: match[1]!, consumerGroup: match[2]!, partitionId: match[3]! };
}
