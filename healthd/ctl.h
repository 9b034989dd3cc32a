/* ctl.h: the `healthd ctl` subcommand, the client of the admin socket. */
#ifndef HEALTHD_CTL_H
#define HEALTHD_CTL_H

#include <stdio.h>

/* argv[0] is "ctl". Returns the process exit status. */
int ctl_main(int argc, char **argv);
void ctl_usage(FILE *out);

#endif
