// Verifies Standard Webhooks deliveries with the npm package `standardwebhooks` (not our code).
// stdin: a JSON list of {"secret", "headers", "body": base64 of the raw body};
// stdout: a JSON list, per case true (verified) or the library's error message.
const { Webhook } = require("standardwebhooks");

let input = "";
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const verdicts = JSON.parse(input).map(({ secret, headers, body }) => {
    try {
      new Webhook(secret).verify(Buffer.from(body, "base64"), headers);
      return true;
    } catch (err) {
      return String(err.message);
    }
  });
  process.stdout.write(JSON.stringify(verdicts));
});
