/*
 * A fault-injecting PKCS#11 proxy around a real module (SoftHSM2 by default), for the reliability tests.
 *
 * It loads the real module (PKCS11_FAULT_MODULE, default /usr/lib/softhsm/libsofthsm2.so), hands out a copy
 * of the real function list and forwards every call unchanged -- except while the control file named by
 * PKCS11_FAULT_FILE exists. Then the token-facing calls fail as a real device would:
 *
 *   file content "removed" (or empty): the token is pulled out. On the first faulted call every real session
 *       is closed (C_CloseAllSessions on every slot), so the login is really gone when the token comes back,
 *       as after re-inserting a smart card or an HSM restart. C_GetSlotList(tokenPresent) lists no slot,
 *       C_GetTokenInfo / C_OpenSession return CKR_TOKEN_NOT_PRESENT, session calls CKR_DEVICE_REMOVED.
 *   file content "error": the device answers CKR_DEVICE_ERROR to every token-facing call (sessions survive).
 *
 * C_Initialize, C_Finalize, C_GetInfo, C_GetFunctionList and C_CloseSession always go through. No PKCS#11
 * header is needed: the types are the standard's (CK_ULONG is unsigned long on LP64 Unix, CK_BBOOL a byte)
 * and the function list is the v2.40 layout, 68 pointers after the version.
 *
 * Build: gcc -shared -fPIC -O2 -o libpkcs11fault.so pkcs11_fault.c -ldl
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef unsigned long CK_ULONG;
typedef CK_ULONG CK_RV;
typedef unsigned char CK_BBOOL;
typedef struct { unsigned char major, minor; } CK_VERSION;

#define CKR_OK 0x00UL
#define CKR_DEVICE_ERROR 0x30UL
#define CKR_DEVICE_REMOVED 0x32UL
#define CKR_TOKEN_NOT_PRESENT 0xE0UL
#define CKR_GENERAL_ERROR 0x05UL
#define N_FUNCTIONS 68

typedef struct {
    CK_VERSION version;
    void *fn[N_FUNCTIONS];
} FUNCTION_LIST;

/* indexes in the v2.40 function list */
enum {
    I_GetSlotList = 4, I_GetTokenInfo = 6, I_GetMechanismList = 7, I_GetMechanismInfo = 8,
    I_OpenSession = 12, I_CloseAllSessions = 14, I_GetSessionInfo = 15, I_Login = 18, I_Logout = 19,
    I_CreateObject = 20, I_DestroyObject = 22, I_GetAttributeValue = 24, I_SetAttributeValue = 25,
    I_FindObjectsInit = 26, I_FindObjects = 27, I_FindObjectsFinal = 28, I_DigestInit = 37, I_Digest = 38,
    I_SignInit = 42, I_Sign = 43, I_SignUpdate = 44, I_SignFinal = 45, I_VerifyInit = 48, I_Verify = 49,
    I_GenerateKeyPair = 59, I_GenerateRandom = 64,
};

typedef CK_RV (*GetFunctionList_t)(FUNCTION_LIST **);

static FUNCTION_LIST *real;
static FUNCTION_LIST proxy;
static int faulted; /* 1 while a "removed" fault is on and the real sessions were closed */

enum { F_NONE = 0, F_REMOVED = 1, F_ERROR = 2 };

static int fault_mode(void) {
    const char *path = getenv("PKCS11_FAULT_FILE");
    if (path == NULL || access(path, F_OK) != 0) {
        faulted = 0;
        return F_NONE;
    }
    char buf[16] = {0};
    FILE *fh = fopen(path, "r");
    if (fh != NULL) {
        size_t n = fread(buf, 1, sizeof buf - 1, fh);
        buf[n] = 0;
        fclose(fh);
    }
    return strncmp(buf, "error", 5) == 0 ? F_ERROR : F_REMOVED;
}

/* A removal ends every session and the login with it, as a pulled device does. */
static void remove_token(void) {
    if (faulted) return;
    faulted = 1;
    CK_ULONG count = 0;
    CK_RV (*slots)(CK_BBOOL, CK_ULONG *, CK_ULONG *) = real->fn[I_GetSlotList];
    CK_RV (*close_all)(CK_ULONG) = real->fn[I_CloseAllSessions];
    if (slots(0, NULL, &count) != CKR_OK || count == 0) return;
    CK_ULONG *ids = calloc(count, sizeof *ids);
    if (ids == NULL) return;
    if (slots(0, ids, &count) == CKR_OK)
        for (CK_ULONG i = 0; i < count; i++) close_all(ids[i]);
    free(ids);
}

/* The failure a token-facing call gets now (CKR_OK: forward it). */
static CK_RV fault(CK_RV when_removed) {
    switch (fault_mode()) {
    case F_REMOVED:
        remove_token();
        return when_removed;
    case F_ERROR:
        return CKR_DEVICE_ERROR;
    default:
        return CKR_OK;
    }
}

#define U CK_ULONG
#define P void *
#define WRAP(name, removed_rv, params, args)                                   \
    static CK_RV w_##name params {                                             \
        CK_RV rv = fault(removed_rv);                                          \
        if (rv != CKR_OK) return rv;                                           \
        return ((CK_RV(*) params)real->fn[I_##name]) args;                     \
    }

static CK_RV w_GetSlotList(CK_BBOOL present, CK_ULONG *list, CK_ULONG *count) {
    int mode = fault_mode();
    if (mode == F_REMOVED && present) {
        remove_token();
        if (count != NULL) *count = 0;
        return CKR_OK;
    }
    return ((CK_RV(*)(CK_BBOOL, CK_ULONG *, CK_ULONG *))real->fn[I_GetSlotList])(present, list, count);
}

WRAP(GetTokenInfo, CKR_TOKEN_NOT_PRESENT, (U a, P b), (a, b))
WRAP(GetMechanismList, CKR_TOKEN_NOT_PRESENT, (U a, P b, P c), (a, b, c))
WRAP(GetMechanismInfo, CKR_TOKEN_NOT_PRESENT, (U a, U b, P c), (a, b, c))
WRAP(OpenSession, CKR_TOKEN_NOT_PRESENT, (U a, U b, P c, P d, P e), (a, b, c, d, e))
WRAP(GetSessionInfo, CKR_DEVICE_REMOVED, (U a, P b), (a, b))
WRAP(Login, CKR_DEVICE_REMOVED, (U a, U b, P c, U d), (a, b, c, d))
WRAP(Logout, CKR_DEVICE_REMOVED, (U a), (a))
WRAP(CreateObject, CKR_DEVICE_REMOVED, (U a, P b, U c, P d), (a, b, c, d))
WRAP(DestroyObject, CKR_DEVICE_REMOVED, (U a, U b), (a, b))
WRAP(GetAttributeValue, CKR_DEVICE_REMOVED, (U a, U b, P c, U d), (a, b, c, d))
WRAP(SetAttributeValue, CKR_DEVICE_REMOVED, (U a, U b, P c, U d), (a, b, c, d))
WRAP(FindObjectsInit, CKR_DEVICE_REMOVED, (U a, P b, U c), (a, b, c))
WRAP(FindObjects, CKR_DEVICE_REMOVED, (U a, P b, U c, P d), (a, b, c, d))
WRAP(FindObjectsFinal, CKR_DEVICE_REMOVED, (U a), (a))
WRAP(DigestInit, CKR_DEVICE_REMOVED, (U a, P b), (a, b))
WRAP(Digest, CKR_DEVICE_REMOVED, (U a, P b, U c, P d, P e), (a, b, c, d, e))
WRAP(SignInit, CKR_DEVICE_REMOVED, (U a, P b, U c), (a, b, c))
WRAP(Sign, CKR_DEVICE_REMOVED, (U a, P b, U c, P d, P e), (a, b, c, d, e))
WRAP(SignUpdate, CKR_DEVICE_REMOVED, (U a, P b, U c), (a, b, c))
WRAP(SignFinal, CKR_DEVICE_REMOVED, (U a, P b, P c), (a, b, c))
WRAP(VerifyInit, CKR_DEVICE_REMOVED, (U a, P b, U c), (a, b, c))
WRAP(Verify, CKR_DEVICE_REMOVED, (U a, P b, U c, P d, U e), (a, b, c, d, e))
WRAP(GenerateKeyPair, CKR_DEVICE_REMOVED, (U a, P b, P c, U d, P e, U f, P g, P h), (a, b, c, d, e, f, g, h))
WRAP(GenerateRandom, CKR_DEVICE_REMOVED, (U a, P b, U c), (a, b, c))

CK_RV C_GetFunctionList(FUNCTION_LIST **out);

static CK_RV load_real(void) {
    if (real != NULL) return CKR_OK;
    const char *path = getenv("PKCS11_FAULT_MODULE");
    if (path == NULL || *path == 0) path = "/usr/lib/softhsm/libsofthsm2.so";
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) return CKR_GENERAL_ERROR;
    GetFunctionList_t get = (GetFunctionList_t)dlsym(handle, "C_GetFunctionList");
    FUNCTION_LIST *list = NULL;
    if (get == NULL || get(&list) != CKR_OK || list == NULL) return CKR_GENERAL_ERROR;
    real = list;
    memcpy(&proxy, real, sizeof proxy);
    proxy.fn[3] = (void *)C_GetFunctionList;
#define SET(name) proxy.fn[I_##name] = (void *)w_##name
    SET(GetSlotList); SET(GetTokenInfo); SET(GetMechanismList); SET(GetMechanismInfo); SET(OpenSession);
    SET(GetSessionInfo); SET(Login); SET(Logout); SET(CreateObject); SET(DestroyObject);
    SET(GetAttributeValue); SET(SetAttributeValue); SET(FindObjectsInit); SET(FindObjects);
    SET(FindObjectsFinal); SET(DigestInit); SET(Digest); SET(SignInit); SET(Sign); SET(SignUpdate);
    SET(SignFinal); SET(VerifyInit); SET(Verify); SET(GenerateKeyPair); SET(GenerateRandom);
    return CKR_OK;
}

CK_RV C_GetFunctionList(FUNCTION_LIST **out) {
    CK_RV rv = load_real();
    if (rv != CKR_OK) return rv;
    *out = &proxy;
    return CKR_OK;
}
