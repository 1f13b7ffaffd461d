/* A tiny C extension: one wheel per CPython ABI, so installing the wrong
 * one for a target fails to import on that target's interpreter. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *checksum(PyObject *self, PyObject *args) {
    const char *data;
    Py_ssize_t len;
    if (!PyArg_ParseTuple(args, "s#", &data, &len))
        return NULL;
    unsigned long sum = 0;
    for (Py_ssize_t i = 0; i < len; i++)
        sum = (sum * 31 + (unsigned char)data[i]) % 1000000007UL;
    return PyLong_FromUnsignedLong(sum);
}

static PyMethodDef methods[] = {
    {"checksum", checksum, METH_VARARGS, "A rolling checksum of a string."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_speedups", NULL, -1, methods};

PyMODINIT_FUNC PyInit__speedups(void) { return PyModule_Create(&module); }
