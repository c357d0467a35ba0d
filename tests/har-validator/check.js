// Usage: node check.js FILE.har — exits 0 when FILE is a valid HAR 1.2 log,
// else prints the schema errors and exits 1.
const fs = require('fs');
const validate = require('har-validator');

const file = process.argv[2];
let data;
try {
  data = JSON.parse(fs.readFileSync(file, 'utf8'));
} catch (e) {
  console.error(`${file}: not JSON: ${e.message}`);
  process.exit(1);
}
validate
  .har(data)
  .then(() => {
    console.log(`${file}: valid HAR ${data.log.version}, ${data.log.entries.length} entries`);
  })
  .catch((e) => {
    console.error(`${file}: invalid HAR: ${e.message}`);
    console.error(JSON.stringify(e.errors || [], null, 2));
    process.exit(1);
  });
