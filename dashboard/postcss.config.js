//! Tailwind then autoprefixer, as Tremor v3's installation guide sets up.

export default {
  plugins: {
    tailwindcss: {},
    autoprefixer: {},
  },
};
