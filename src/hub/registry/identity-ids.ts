import { hubErrors } from '../errors.js';

// IoT Hub: up to 128 ASCII 7-bit alphanumerics plus - . % _ * ? ! ( ) , : = @ $ '
const ALLOWED = /^[A-Za-z0-9\-.%_*?!(),:=@$']+$/;

export function validateId(kind: 'device' | 'module', id: unknown): string {
  if (typeof id !== 'string' || id.length === 0) throw hubErrors.argumentNull(`${kind}Id is required`);
  if (id.length > 128) throw hubErrors.argumentInvalid(`The ${kind}Id '${id.slice(0, 20)}...' is longer than 128 characters`);
  if (!ALLOWED.test(id)) {
    throw hubErrors.argumentInvalid(
      `The ${kind}Id '${id}' is invalid: use up to 128 ASCII letters, digits and - . % _ * ? ! ( ) , : = @ $ '`,
    );
  }
  return id;
}
