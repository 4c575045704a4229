/* A C program that runs an LSTM compiled ahead of time by rnnc (docs/aot.md).
 * Build: cc -O2 -I build docs/examples/lstm_main.c build/lstm.o -o lstm_demo */
#include <stdio.h>
#include <stdlib.h>
#include "lstm.h"

int main(void) {
    /* Inputs in the header's order: input [B, T, I], h0 and c0 [layers·dirs, B, H]. */
    float *input = malloc(lstm_input_len[0] * sizeof(float));
    float *h0 = calloc(lstm_input_len[1], sizeof(float));
    float *c0 = calloc(lstm_input_len[2], sizeof(float));
    for (size_t i = 0; i < lstm_input_len[0]; i++)
        input[i] = (float)((int)(i % 17) - 8) / 8.0f;
    /* Outputs: output [B, T, dirs·H], h_n and c_n. */
    float *output = malloc(lstm_output_len[0] * sizeof(float));
    float *h_n = malloc(lstm_output_len[1] * sizeof(float));
    float *c_n = malloc(lstm_output_len[2] * sizeof(float));
    float *workspace = malloc(LSTM_WORKSPACE_FLOATS * sizeof(float));

    const float *inputs[] = {input, h0, c0};
    float *outputs[] = {output, h_n, c_n};
    lstm_run(inputs, outputs, workspace);

    printf("batch %d, length %d; output[0][0][0..4] =", LSTM_BATCH, LSTM_SEQ);
    for (int i = 0; i < 4; i++)
        printf(" %.6f", output[i]);
    printf("\n");
    free(input); free(h0); free(c0); free(output); free(h_n); free(c_n); free(workspace);
    return 0;
}
