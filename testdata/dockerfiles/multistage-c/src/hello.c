#include <stdio.h>
int main(void) { puts("hello from a static C binary"); return 0; }
