/* placeholder until the SDK lands */
int jm_client_placeholder_;
