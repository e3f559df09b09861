/* Minimal pod sandbox ("pause") process: sleeps until SIGINT/SIGTERM, reaps zombies.
 * Built with gcc -static by hack/cluster/images.sh. */
#include <signal.h>
#include <stddef.h>
#include <sys/wait.h>
#include <unistd.h>

static void sigdown(int signo) { (void)signo; _exit(0); }
static void sigreap(int signo) {
  (void)signo;
  while (waitpid(-1, NULL, WNOHANG) > 0) {}
}

int main(void) {
  struct sigaction down = {.sa_handler = sigdown}, reap = {.sa_handler = sigreap};
  if (getpid() != 1) { /* like upstream pause: still works, only reaping is moot */ }
  sigaction(SIGINT, &down, NULL);
  sigaction(SIGTERM, &down, NULL);
  sigaction(SIGCHLD, &reap, NULL);
  for (;;) pause();
  return 1;
}
