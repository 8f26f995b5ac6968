/* placeholder until the SDK lands */
int jm_worker_placeholder_;
