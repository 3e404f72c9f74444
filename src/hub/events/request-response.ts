import type { Connection, Message, Sender } from 'rhea';
import { rhea } from '../amqp/rhea.js';

// $cbs and $management are request/response nodes: a request comes in on a link to the node and
// names, in reply_to, the client's receiving link; the reply carries the request's message id as
// its correlation id and an HTTP-like status in its application properties.

export interface Reply {
  statusCode: number;
  statusDescription: string;
  /** An AMQP error condition, for the SDK to raise the right error class. */
  errorCondition?: string;
  body?: unknown;
}

export function sendReply(connection: Connection, request: Message, reply: Reply): void {
  const replyTo = request.reply_to;
  // The reply link is named by reply_to (@azure/core-amqp), or is the one attached to the node (azure-iothub's
  // reply_to 'cbs' names no link: its receiver has the node, $cbs, as its source).
  const link =
    connection.find_sender((s: Sender) => s.name === replyTo || s.target?.address === replyTo) ??
    connection.find_sender((s: Sender) => s.source?.address === request.to);
  if (!link || !link.is_open()) return; // the client went away before the answer; nobody to tell
  const properties: Record<string, unknown> = {
    'status-code': rhea().types.wrap_int(reply.statusCode),
    'status-description': reply.statusDescription,
  };
  if (reply.errorCondition) properties['error-condition'] = rhea().types.wrap_symbol(reply.errorCondition);
  link.send({
    correlation_id: request.message_id,
    to: replyTo,
    application_properties: properties,
    body: reply.body ?? null,
  });
}

export function errorReply(statusCode: number, errorCondition: string, statusDescription: string): Reply {
  return { statusCode, statusDescription, errorCondition };
}
