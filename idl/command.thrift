// Remote commands (RPC_CLI_CLI_CALL), served by every role.

namespace go gen.cmd

struct command {
    1: string cmd;
    2: list<string> arguments;
}

service remote_cmd_service {
    // RPC_CLI_CLI_CALL: the reply is a bare string (result field 0 has type STRING)
    string call_cli(1: command cmd);
}
