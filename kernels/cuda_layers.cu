// Fused elementwise kernels of the CuPy backend's layer-by-layer pass (CUDA C, compiled by CuPy's
// RawModule with NVRTC at run time, and by nvcc in the tests).
//
// The activation codes and constants (NNACCEL_TANH, NNACCEL_LEAKY_RELU_SLOPE, ...) are #defines
// that kernels/cuda_layers.py prepends from kernels/activations.py and nnaccel/nn/activations.py,
// so there is one definition of each. The math mirrors the scalar functions of
// kernels/activations.py; tests/test_cuda_layers.py compiles this file on the host and checks it
// against them and the NumPy backend.
//
// Layout: every (p, m) array is C-contiguous, row r holding unit r for the m examples; b is (p, 1).
// Each kernel is a template over the element type T, instantiated for float and double below as
// extern "C" functions named <kernel>_float and <kernel>_double.

#ifndef __CUDACC_RTC__
#include <math.h>
#endif

#define NNACCEL_THREADS 256  // threads per block of every kernel here

// ----- scalar math: host and device --------------------------------------------------------------
template <typename T>
__host__ __device__ inline T nnaccel_activate(T a, int code) {
    switch (code) {
        case NNACCEL_SIGMOID: return T(0.5) + T(0.5) * tanh(T(0.5) * a);  // never overflows
        case NNACCEL_TANH: return tanh(a);
        case NNACCEL_RELU: return a > T(0) ? a : T(0);
        case NNACCEL_LEAKY_RELU: return a > T(0) ? a : T(NNACCEL_LEAKY_RELU_SLOPE) * a;
        case NNACCEL_ELU: return a > T(0) ? a : T(NNACCEL_ELU_ALPHA) * expm1(a);
        case NNACCEL_SELU:
            return a > T(0) ? T(NNACCEL_SELU_SCALE) * a
                            : T(NNACCEL_SELU_SCALE * NNACCEL_SELU_ALPHA) * expm1(a);
        default: return a;  // identity
    }
}

// act'(A) written from H = act(A) (for the relu family H > 0 exactly when A > 0).
template <typename T>
__host__ __device__ inline T nnaccel_derivative(T h, int code) {
    switch (code) {
        case NNACCEL_SIGMOID: return h * (T(1) - h);
        case NNACCEL_TANH: return T(1) - h * h;
        case NNACCEL_RELU: return h > T(0) ? T(1) : T(0);
        case NNACCEL_LEAKY_RELU: return h > T(0) ? T(1) : T(NNACCEL_LEAKY_RELU_SLOPE);
        case NNACCEL_ELU: return h > T(0) ? T(1) : h + T(NNACCEL_ELU_ALPHA);
        case NNACCEL_SELU:
            return h > T(0) ? T(NNACCEL_SELU_SCALE) : h + T(NNACCEL_SELU_SCALE * NNACCEL_SELU_ALPHA);
        default: return T(1);  // identity
    }
}

// Binary cross-entropy of sigmoid(a) against y, from a: max(a, 0) - a y + log(1 + e^-|a|).
// Each entry's loss is computed in T and summed in double.
template <typename T>
__host__ __device__ inline T nnaccel_sigmoid_cross_entropy(T a, T y) {
    return (a > T(0) ? a : T(0)) - a * y + log1p(exp(-fabs(a)));
}

// One column of the output layer: A[:, column] (+ b) becomes dA = H - Y; returns the column's loss.
// With ``with_loss`` false it becomes H = out(A + b) instead (prediction).
template <typename T>
__host__ __device__ inline double nnaccel_output_column(T* A, const T* b, const T* Y, long long p,
                                                        long long m, long long column, int code,
                                                        bool with_loss) {
    double loss = 0.0;
    if (code == NNACCEL_OUTPUT_SOFTMAX) {
        T shift = A[column] + b[0];
        for (long long r = 1; r < p; ++r) shift = fmax(shift, A[r * m + column] + b[r]);
        T total = T(0);
        for (long long r = 0; r < p; ++r) total += exp(A[r * m + column] + b[r] - shift);
        T log_normaliser = log(total);
        for (long long r = 0; r < p; ++r) {
            T shifted = A[r * m + column] + b[r] - shift;
            T h = exp(shifted - log_normaliser);
            if (with_loss) {
                T y = Y[r * m + column];
                loss += (double)(y * (log_normaliser - shifted));  // -y log(h)
                A[r * m + column] = h - y;
            } else {
                A[r * m + column] = h;
            }
        }
    } else {
        for (long long r = 0; r < p; ++r) {
            T a = A[r * m + column] + b[r];
            T h = code == NNACCEL_OUTPUT_SIGMOID ? nnaccel_activate(a, NNACCEL_SIGMOID) : a;
            if (with_loss) {
                T y = Y[r * m + column];
                if (code == NNACCEL_OUTPUT_SIGMOID) {
                    loss += (double)nnaccel_sigmoid_cross_entropy(a, y);
                } else {
                    T difference = h - y;
                    loss += (double)(T(0.5) * difference * difference);  // half the squared error
                }
                A[r * m + column] = h - y;  // dA = H - Y
            } else {
                A[r * m + column] = h;
            }
        }
    }
    return loss;
}

// W -= lr * (dW + l1 sign(W) + l2 W)
template <typename T>
__host__ __device__ inline T nnaccel_updated(T W, T dW, T lr, T l1, T l2) {
    T sign = W > T(0) ? T(1) : (W < T(0) ? T(-1) : T(0));
    return W - lr * (dW + l1 * sign + l2 * W);
}

// ----- kernels -----------------------------------------------------------------------------------
// In place: A (p, m) becomes H = act(A + b). Grid: x strides over columns, y over rows.
template <typename T>
__device__ void nnaccel_bias_activation(T* A, const T* b, long long p, long long m, int code) {
    for (long long r = blockIdx.y; r < p; r += gridDim.y) {
        T bias = b[r];
        for (long long c = (long long)blockIdx.x * blockDim.x + threadIdx.x; c < m;
             c += (long long)gridDim.x * blockDim.x) {
            A[r * m + c] = nnaccel_activate(A[r * m + c] + bias, code);
        }
    }
}

// In place: dH (size entries) becomes dA = dH * act'(A), with act' written from H.
template <typename T>
__device__ void nnaccel_activation_backward(T* dH, const T* H, long long size, int code) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < size;
         i += (long long)gridDim.x * blockDim.x) {
        dH[i] *= nnaccel_derivative(H[i], code);
    }
}

// One thread per column: A (p, m) becomes dA = H - Y (or H, without loss); each block writes the
// sum of its columns' losses to partial_loss[blockIdx.x] (a fixed-order tree, so results repeat).
template <typename T>
__device__ void nnaccel_output_layer(T* A, const T* b, const T* Y, long long p, long long m,
                                     int code, bool with_loss, double* partial_loss) {
    __shared__ double shared[NNACCEL_THREADS];
    double loss = 0.0;
    for (long long c = (long long)blockIdx.x * blockDim.x + threadIdx.x; c < m;
         c += (long long)gridDim.x * blockDim.x) {
        loss += nnaccel_output_column(A, b, Y, p, m, c, code, with_loss);
    }
    if (!with_loss) return;
    shared[threadIdx.x] = loss;
    __syncthreads();
    for (int half = NNACCEL_THREADS / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) shared[threadIdx.x] += shared[threadIdx.x + half];
        __syncthreads();
    }
    if (threadIdx.x == 0) partial_loss[blockIdx.x] = shared[0];
}

template <typename T>
__device__ void nnaccel_update(T* W, const T* dW, long long size, T lr, T l1, T l2) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < size;
         i += (long long)gridDim.x * blockDim.x) {
        W[i] = nnaccel_updated(W[i], dW[i], lr, l1, l2);
    }
}

// SGD with momentum (nnaccel.optim.SGD), one entry: g = dW + l2 W + l1 sign(W);
// buffer = momentum buffer + g; W -= lr (g + momentum buffer) with Nesterov, else W -= lr buffer.
template <typename T>
__host__ __device__ inline void nnaccel_momentum_entry(T* W, T dW, T* buffer, T lr, T momentum, int nesterov,
                                                       T l1, T l2) {
    T w = *W;
    T sign = w > T(0) ? T(1) : (w < T(0) ? T(-1) : T(0));
    T g = dW + l2 * w + l1 * sign;
    T velocity = momentum * *buffer + g;
    *buffer = velocity;
    *W = w - lr * (nesterov ? g + momentum * velocity : velocity);
}

// One Adam/AdamW entry (nnaccel.optim.Adam): g = dW + l2 W + l1 sign(W); W *= decay;
// m += (1 - beta1) (g - m); v = beta2 v + (1 - beta2) g^2; W -= step_size m / (sqrt(v) / bias2_sqrt + eps).
template <typename T>
__host__ __device__ inline void nnaccel_adam_entry(T* W, T dW, T* m, T* v, T step_size, T beta1, T beta2, T eps,
                                                   T bias2_sqrt, T decay, T l1, T l2) {
    T w = *W;
    T sign = w > T(0) ? T(1) : (w < T(0) ? T(-1) : T(0));
    T g = dW + l2 * w + l1 * sign;
    T first = *m + (T(1) - beta1) * (g - *m);
    T second = beta2 * *v + (T(1) - beta2) * g * g;
    *m = first;
    *v = second;
    *W = w * decay - step_size * (first / (sqrt(second) / bias2_sqrt + eps));
}

template <typename T>
__device__ void nnaccel_momentum_update(T* W, const T* dW, T* buffer, long long size, T lr, T momentum,
                                        int nesterov, T l1, T l2) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < size;
         i += (long long)gridDim.x * blockDim.x) {
        nnaccel_momentum_entry(W + i, dW[i], buffer + i, lr, momentum, nesterov, l1, l2);
    }
}

template <typename T>
__device__ void nnaccel_adam_update(T* W, const T* dW, T* m, T* v, long long size, T step_size, T beta1,
                                    T beta2, T eps, T bias2_sqrt, T decay, T l1, T l2) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < size;
         i += (long long)gridDim.x * blockDim.x) {
        nnaccel_adam_entry(W + i, dW[i], m + i, v + i, step_size, beta1, beta2, eps, bias2_sqrt, decay, l1, l2);
    }
}

// One block: total[0] = the sum of count partial losses, in a fixed order.
extern "C" __global__ void sum_partials(const double* partial_loss, int count, double* total) {
    __shared__ double shared[NNACCEL_THREADS];
    double sum = 0.0;
    for (int i = threadIdx.x; i < count; i += blockDim.x) sum += partial_loss[i];
    shared[threadIdx.x] = sum;
    __syncthreads();
    for (int half = NNACCEL_THREADS / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) shared[threadIdx.x] += shared[threadIdx.x + half];
        __syncthreads();
    }
    if (threadIdx.x == 0) total[0] = shared[0];
}

#define NNACCEL_INSTANTIATE(T)                                                                    \
    extern "C" __global__ void bias_activation_##T(T* A, const T* b, long long p, long long m,    \
                                                   int code) {                                    \
        nnaccel_bias_activation(A, b, p, m, code);                                                \
    }                                                                                             \
    extern "C" __global__ void activation_backward_##T(T* dH, const T* H, long long size,         \
                                                       int code) {                                \
        nnaccel_activation_backward(dH, H, size, code);                                           \
    }                                                                                             \
    extern "C" __global__ void output_loss_gradient_##T(T* A, const T* b, const T* Y, long long p, \
                                                        long long m, int code,                    \
                                                        double* partial_loss) {                   \
        nnaccel_output_layer(A, b, Y, p, m, code, true, partial_loss);                            \
    }                                                                                             \
    extern "C" __global__ void output_activation_##T(T* A, const T* b, long long p, long long m,   \
                                                     int code) {                                  \
        nnaccel_output_layer(A, b, (const T*)0, p, m, code, false, (double*)0);                   \
    }                                                                                             \
    extern "C" __global__ void update_##T(T* W, const T* dW, long long size, T lr, T l1, T l2) {  \
        nnaccel_update(W, dW, size, lr, l1, l2);                                                  \
    }                                                                                             \
    extern "C" __global__ void momentum_update_##T(T* W, const T* dW, T* buffer, long long size,  \
                                                   T lr, T momentum, int nesterov, T l1, T l2) {  \
        nnaccel_momentum_update(W, dW, buffer, size, lr, momentum, nesterov, l1, l2);             \
    }                                                                                             \
    extern "C" __global__ void adam_update_##T(T* W, const T* dW, T* m, T* v, long long size,     \
                                               T step_size, T beta1, T beta2, T eps,              \
                                               T bias2_sqrt, T decay, T l1, T l2) {               \
        nnaccel_adam_update(W, dW, m, v, size, step_size, beta1, beta2, eps, bias2_sqrt, decay,   \
                            l1, l2);                                                              \
    }

NNACCEL_INSTANTIATE(float)
NNACCEL_INSTANTIATE(double)
