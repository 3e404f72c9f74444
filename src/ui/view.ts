// What every view is to the page's router, and links between views.

export interface View {
  element: HTMLElement;
  /** Unsubscribes from live updates when the view is left. */
  dispose?(): void;
}

/** The hash link of a view, for one identity when given: #/twin?device=d&module=m. */
export function viewLink(view: string, identity?: { deviceId: string; moduleId?: string }): string {
  if (!identity) return `#/${view}`;
  const query = new URLSearchParams({ device: identity.deviceId, ...(identity.moduleId ? { module: identity.moduleId } : {}) });
  return `#/${view}?${query}`;
}

/** The identity a view's link names. */
export function identityParam(params: URLSearchParams): { deviceId: string; moduleId?: string } | undefined {
  const deviceId = params.get('device');
  if (!deviceId) return undefined;
  const moduleId = params.get('module');
  return moduleId ? { deviceId, moduleId } : { deviceId };
}
