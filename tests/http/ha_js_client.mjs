// The Node client for tests/http/test_ha_follow.py: given "standby,leader"
// (argv[2]) it submits one job, says "submitted ID", waits for it across
// the failover the test causes, and says "result TEXT". Not a test itself.
import { Client } from '../../client/js/src/index.js';

const jm = new Client({ url: process.argv[2], timeout: 30000 });
const id = await jm.submit('q', 't', 'from-node');
console.log(`submitted ${id}`);
const result = await jm.wait(id, { timeout: 60000 });
console.log(`result ${result}`);
