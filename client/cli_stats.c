/* jobmesh stats: per-queue counters as a table or JSON. */
#include <stdlib.h>

#include "cli_common.h"
#include "cli_output.h"

int cli_stats_run(struct cli *cli, const struct cli_command *self, int argc, char **argv, int first)
{
	struct cli_opts opts = {0};
	int operands_count = 0;
	bool done = false;
	int code =
	    cli_command_args(self, &opts, argc, argv, first, NULL, 0, &operands_count, &done);
	if (code != CLI_EXIT_OK || done)
		return code;
	jm_client *client = cli_client(cli, "stats", &code);
	if (client == NULL)
		return code;
	jm_queue_stats *queues = NULL;
	size_t queues_count = 0;
	int rc = jm_client_stats(client, &queues, &queues_count);
	if (rc != 0)
		return cli_fail_sdk(rc);
	if (opts.json) {
		if (cli_print_json(stdout, cli_json_stats(queues, queues_count)) != 0)
			code =
			    cli_fail(CLI_EXIT_ERROR, "stats", "printing the stats as JSON failed");
	} else {
		cli_print_stats(stdout, queues, queues_count);
	}
	free(queues);
	return code;
}
