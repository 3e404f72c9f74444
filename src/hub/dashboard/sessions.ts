import { createHash, randomBytes } from 'node:crypto';

/** A signed-in browser: what it may do is the rights of a shared access policy of the hub. */
export interface DashboardSession {
  /** The hash of the cookie's value (the value itself is kept nowhere). */
  readonly id: string;
  /** The shared access policy whose rights the session has (iothubowner). */
  readonly policy: string;
  readonly expiresAtMs: number;
}

export interface SessionOptions {
  policy: string;
  /** How long a session lasts from sign-in. */
  lifetimeMs: number;
  now?: () => number;
}

/** Login links not used yet are kept up to this many (the oldest is forgotten first). */
const MAX_OPEN_LOGIN_TOKENS = 16;

/**
 * The dashboard's sign-in, as Jupyter's: `hub start` prints a URL with a login token; opening it
 * spends the token (once) and gives the browser a session cookie. Tokens and cookie values are 256
 * random bits; only their SHA-256 is kept, so a lookup reveals nothing through its timing.
 * Everything lives in memory: a restarted hub knows no old cookie.
 */
export class DashboardSessions {
  private readonly loginTokens = new Set<string>();
  private readonly sessions = new Map<string, DashboardSession>();
  private readonly now: () => number;

  constructor(private readonly options: SessionOptions) {
    this.now = options.now ?? Date.now;
  }

  /** A new one-time login token. */
  issueLoginToken(): string {
    const token = randomSecret();
    this.loginTokens.add(digest(token));
    if (this.loginTokens.size > MAX_OPEN_LOGIN_TOKENS) this.loginTokens.delete(this.loginTokens.values().next().value!);
    return token;
  }

  /** Spends a login token: a new session and the cookie value that names it, or undefined for an unknown or spent token. */
  redeem(token: string): { session: DashboardSession; cookieValue: string } | undefined {
    if (!this.loginTokens.delete(digest(token))) return undefined;
    this.dropExpired();
    const cookieValue = randomSecret();
    const session = { id: digest(cookieValue), policy: this.options.policy, expiresAtMs: this.now() + this.options.lifetimeMs };
    this.sessions.set(session.id, session);
    return { session, cookieValue };
  }

  /** The live session a cookie value names. */
  find(cookieValue: string | undefined): DashboardSession | undefined {
    if (!cookieValue) return undefined;
    const session = this.sessions.get(digest(cookieValue));
    if (!session) return undefined;
    if (this.isLive(session)) return session;
    this.sessions.delete(session.id);
    return undefined;
  }

  isLive(session: DashboardSession): boolean {
    return this.sessions.has(session.id) && session.expiresAtMs > this.now();
  }

  end(session: DashboardSession): void {
    this.sessions.delete(session.id);
  }

  private dropExpired(): void {
    for (const session of this.sessions.values()) if (session.expiresAtMs <= this.now()) this.sessions.delete(session.id);
  }
}

function randomSecret(): string {
  return randomBytes(32).toString('base64url');
}

function digest(secret: string): string {
  return createHash('sha256').update(secret).digest('base64url');
}
