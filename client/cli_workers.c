/* jobmesh workers: the workers the broker knows, as a table or JSON. */
#include <stdlib.h>

#include "cli_common.h"
#include "cli_output.h"
#include "clock.h"

int cli_workers_run(struct cli *cli, const struct cli_command *self, int argc, char **argv,
                    int first)
{
	struct cli_opts opts = {0};
	int operands_count = 0;
	bool done = false;
	int code =
	    cli_command_args(self, &opts, argc, argv, first, NULL, 0, &operands_count, &done);
	if (code != CLI_EXIT_OK || done)
		return code;
	jm_client *client = cli_client(cli, "workers", &code);
	if (client == NULL)
		return code;
	jm_worker_info *workers = NULL;
	size_t workers_count = 0;
	int rc = jm_client_workers(client, &workers, &workers_count);
	if (rc != 0)
		return cli_fail_sdk(rc);
	uint64_t now_us = jm_wall_us();
	if (opts.json) {
		if (cli_print_json(stdout, cli_json_workers(workers, workers_count, now_us)) != 0)
			code = cli_fail(CLI_EXIT_ERROR, "workers",
			                "printing the workers as JSON failed");
	} else {
		cli_print_workers(stdout, workers, workers_count, now_us);
	}
	jm_workers_free(workers, workers_count);
	return code;
}
