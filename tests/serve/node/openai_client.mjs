// The official `openai` package against `infini serve`: a completion and a streamed one, with the
// settings given. Prints {"text", "streamed", "finish_reason", "chunks"} as JSON on stdout.
//   node openai_client.mjs BASE_URL JSON_SETTINGS
import OpenAI from "openai";

const [baseURL, settingsJson] = process.argv.slice(2);
const settings = JSON.parse(settingsJson);
const client = new OpenAI({ baseURL: baseURL + "/v1", apiKey: settings.api_key || "none", maxRetries: 0 });
delete settings.api_key;

const models = await client.models.list();
const model = models.data[0].id;
const whole = await client.completions.create({ model, ...settings });
let streamed = "";
let chunks = 0;
let finishReason = null;
const stream = await client.completions.create({ model, ...settings, stream: true });
for await (const chunk of stream) {
  chunks += 1;
  streamed += chunk.choices[0].text;
  if (chunk.choices[0].finish_reason) finishReason = chunk.choices[0].finish_reason;
}
console.log(JSON.stringify({ model, text: whole.choices[0].text, finish_reason: whole.choices[0].finish_reason,
                             usage: whole.usage, streamed, stream_finish_reason: finishReason, chunks }));
