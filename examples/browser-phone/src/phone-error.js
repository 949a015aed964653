// An error whose message is a sentence the person in front of the page can act on.

export class PhoneError extends Error {
  name = "PhoneError";
}
